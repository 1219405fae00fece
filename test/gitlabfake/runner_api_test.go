package gitlabfake

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
	"gotest.tools/v3/assert"
)

const forbidden = `{"message":"403 Forbidden"}`

func TestVerifyRunner(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	r := projectRunner(t, s, seed, nil)

	resp := rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{
		"token": r.Token, "system_id": "s_0123456789ab",
		"info": map[string]any{"version": "18.9.0", "revision": "abc", "platform": "linux", "architecture": "amd64"},
	})
	assertResponse(t, resp, http.StatusOK, `{"id":`+itoa(r.ID)+`,"token":"`+r.Token+`","token_expires_at":null}`)

	got, _ := s.Runner(r.ID)
	assert.Equal(t, *got.ContactedAt, now)
	assert.DeepEqual(t, got.Managers, []Manager{{ID: 1, SystemID: "s_0123456789ab", CreatedAt: now, ContactedAt: now}})

	d, _, err := client(t, s, seed.MaintainerToken).Runners.GetRunnerDetails(r.ID)
	assert.NilError(t, err)
	assert.Equal(t, d.Version, "18.9.0")
	assert.Equal(t, d.Platform, "linux")

	// The same system_id refreshes its manager; no system_id is the <legacy> manager.
	rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": r.Token, "system_id": "s_0123456789ab"})
	_, err = client(t, s, "").Runners.VerifyRegisteredRunner(&gitlab.VerifyRegisteredRunnerOptions{Token: new(r.Token)})
	assert.NilError(t, err)
	got, _ = s.Runner(r.ID)
	assert.Equal(t, len(got.Managers), 2)
	assert.Equal(t, got.Managers[1].SystemID, "<legacy>")

	// The token may come in the query string.
	resp = rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify?token="+url.QueryEscape(r.Token), "", nil)
	assert.Equal(t, resp.Status, http.StatusOK)

	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": "glrt-t3_nope"}), 403, forbidden)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{}), 400, `{"error":"token is missing"}`)

	_, err = client(t, s, "").Runners.VerifyRegisteredRunner(&gitlab.VerifyRegisteredRunnerOptions{Token: new("glrt-bad")})
	assert.Check(t, gitlab.HasStatusCode(err, http.StatusForbidden))
}

func TestExpiredRunnerTokenIsUnknown(t *testing.T) {
	s, seed := NewTest(t)
	r := projectRunner(t, s, seed, nil)
	s.ExpireRunnerToken(r.ID)

	for _, path := range []string{"/api/v4/runners/verify", "/api/v4/runners/reset_authentication_token"} {
		assertResponse(t, rawRequest(t, s, http.MethodPost, path, "", map[string]any{"token": r.Token}), 403, forbidden)
	}
	assertResponse(t, rawRequest(t, s, http.MethodDelete, "/api/v4/runners", "", map[string]any{"token": r.Token}), 403, forbidden)

	// An expired runner can still be rescued with a PAT.
	tok, _, err := client(t, s, seed.MaintainerToken).Runners.ResetRunnerAuthenticationToken(r.ID)
	assert.NilError(t, err)
	assert.Equal(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": *tok.Token}).Status, http.StatusOK)
}

func TestExpiryByClock(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	s.SetRunnerTokenExpiration(2 * time.Hour)
	r := projectRunner(t, s, seed, nil)

	s.AdvanceClock(2 * time.Hour) // token_expires_at >= NOW() still holds
	assert.Equal(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": r.Token}).Status, http.StatusOK)
	s.AdvanceClock(time.Second)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": r.Token}), 403, forbidden)
}

func TestResetRunnerTokenByToken(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	s.SetRunnerTokenExpiration(72 * time.Hour)
	r := projectRunner(t, s, seed, nil)

	resp := rawRequest(t, s, http.MethodPost, "/api/v4/runners/reset_authentication_token", "", map[string]any{"token": r.Token})
	got, _ := s.Runner(r.ID)
	assertResponse(t, resp, http.StatusCreated, `{"token":"`+got.Token+`","token_expires_at":"2026-03-04T12:00:00.000Z"}`)
	assert.Check(t, got.Token != r.Token)

	// No grace period: the old token is dead at once.
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/reset_authentication_token", "", map[string]any{"token": r.Token}), 403, forbidden)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": r.Token}), 403, forbidden)

	// As the runner's own auto-rotation does it.
	newer := s.RotateRunnerTokenAsRunner(r.ID)
	assert.Check(t, newer != got.Token)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": got.Token}), 403, forbidden)
	assert.Equal(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": newer}).Status, http.StatusOK)
	assert.Equal(t, s.RotateRunnerTokenAsRunner(99999), "")
}

func TestDeleteRunnerByToken(t *testing.T) {
	s, seed := NewTest(t)
	r := projectRunner(t, s, seed, nil)

	_, err := client(t, s, "").Runners.DeleteRegisteredRunner(&gitlab.DeleteRegisteredRunnerOptions{Token: new(r.Token)})
	assert.NilError(t, err)
	_, ok := s.Runner(r.ID)
	assert.Check(t, !ok)
	req := s.Requests()[len(s.Requests())-1]
	assert.Equal(t, req.Query, "token=%5BREDACTED%5D")

	// gitlab-runner sends a JSON body even on DELETE.
	r2 := projectRunner(t, s, seed, nil)
	assertResponse(t, rawRequest(t, s, http.MethodDelete, "/api/v4/runners", "", map[string]any{"token": r2.Token}), 204, "")
	assertResponse(t, rawRequest(t, s, http.MethodDelete, "/api/v4/runners", "", map[string]any{"token": r2.Token}), 403, forbidden)
}

func TestDeleteRunnerManager(t *testing.T) {
	s, seed := NewTest(t)
	r := projectRunner(t, s, seed, nil)
	s.ContactRunner(r.ID, "s_aaaaaaaaaaaa")
	s.ContactRunner(r.ID, "s_bbbbbbbbbbbb")

	assertResponse(t, rawRequest(t, s, http.MethodDelete, "/api/v4/runners/managers", "", map[string]any{"token": r.Token, "system_id": "s_aaaaaaaaaaaa"}), 204, "")
	got, _ := s.Runner(r.ID)
	assert.Equal(t, len(got.Managers), 1)
	assert.Equal(t, got.Managers[0].SystemID, "s_bbbbbbbbbbbb")

	assertResponse(t, rawRequest(t, s, http.MethodDelete, "/api/v4/runners/managers", "", map[string]any{"token": r.Token, "system_id": "s_aaaaaaaaaaaa"}),
		404, `{"message":"404 Runner manager not found Not Found"}`)
	assertResponse(t, rawRequest(t, s, http.MethodDelete, "/api/v4/runners/managers", "", map[string]any{"token": "glrt-x", "system_id": "s_bbbbbbbbbbbb"}), 403, forbidden)
	assertResponse(t, rawRequest(t, s, http.MethodDelete, "/api/v4/runners/managers", "", map[string]any{"token": r.Token}), 400, `{"error":"system_id is missing"}`)
}

func TestLegacyRegistration(t *testing.T) {
	s, seed := NewTest(t)
	r := projectRunner(t, s, seed, nil)

	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners", "", map[string]any{"token": "GR1348941abcdefABCDEF"}),
		410, `{"message":"410 Gone - runner registration disallowed"}`)
	// RegisterRunnerService: any unknown token, glrt- included, is 410 while the instance
	// disallows registration tokens, and 403 once it allows them.
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners", "", map[string]any{"token": r.Token}),
		410, `{"message":"410 Gone - runner registration disallowed"}`)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners", "", map[string]any{}), 400, `{"error":"token is missing"}`)

	_, _, err := client(t, s, "").Runners.RegisterNewRunner(&gitlab.RegisterNewRunnerOptions{Token: new("GR1348941xyz")})
	assert.Check(t, gitlab.HasStatusCode(err, http.StatusGone))
	assert.Equal(t, len(s.Runners()), 1)
}
