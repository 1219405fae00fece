package gitlabfake

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestControlEndpoints(t *testing.T) {
	s, seed := NewTest(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	s.SetRunnerTokenExpiration(72 * time.Hour)
	r := projectRunner(t, s, seed, nil)
	id := itoa(r.ID)
	rawRequest(t, s, http.MethodPost, "/api/v4/projects/42/variables", seed.MaintainerToken, map[string]any{"key": "K", "value": "secret-value", "masked_and_hidden": true})

	// State includes runner tokens and variable values.
	state := decode[State](t, rawRequest(t, s, http.MethodGet, "/-/fake/state", "", nil).Body)
	assert.DeepEqual(t, state, s.State())
	assert.Equal(t, state.Runners[0].Token, r.Token)
	assert.Equal(t, state.Variables[0].Value, "secret-value")

	// Faults: one object or a list; stall as a duration string.
	resp := rawRequest(t, s, http.MethodPost, "/-/fake/faults", "", `{"method":"GET","path":"/runners","status":503,"times":1}`)
	assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
	resp = rawRequest(t, s, http.MethodPost, "/-/fake/faults", "", `[{"path":"/groups/**","stall":"10ms","times":1},{"path":"/x","stall":1000}]`)
	assert.Equal(t, resp.Status, http.StatusCreated, resp.Body)
	faults := s.Faults()
	assert.Equal(t, len(faults), 3)
	assert.Equal(t, faults[1].Stall, 10*time.Millisecond)
	assert.Equal(t, faults[2].Stall, time.Microsecond)
	assert.Equal(t, rawRequest(t, s, http.MethodGet, "/api/v4/runners", seed.OwnerToken, nil).Status, 503)
	assert.Equal(t, rawRequest(t, s, http.MethodDelete, "/-/fake/faults", "", nil).Status, http.StatusNoContent)
	assert.Equal(t, len(s.Faults()), 0)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/-/fake/faults", "", `{"stall":"soon"}`), 400, "{\n  \"error\": \"fault stall: time: invalid duration \\\"soon\\\"\"\n}\n")

	// Requests, redacted.
	reqs := decode[[]Request](t, rawRequest(t, s, http.MethodGet, "/-/fake/requests", "", nil).Body)
	assert.Check(t, len(reqs) >= 2)
	assert.Check(t, is.Contains(reqs[1].Body, `"value":"[REDACTED]"`))

	// Runner simulation.
	resp = rawRequest(t, s, http.MethodPost, "/-/fake/runners/"+id+"/rotate", "", nil)
	rotated := decode[map[string]string](t, resp.Body)["token"]
	got, _ := s.Runner(r.ID)
	assert.Equal(t, rotated, got.Token)

	resp = rawRequest(t, s, http.MethodPost, "/-/fake/runners/"+id+"/contact?system_id=s_000000000001", "", nil)
	assert.Equal(t, decode[Runner](t, resp.Body).Managers[0].SystemID, "s_000000000001")

	// The clock moves token expiry along.
	resp = rawRequest(t, s, http.MethodPost, "/-/fake/clock?advance=73h", "", nil)
	assert.Equal(t, decode[map[string]string](t, resp.Body)["now"], "2026-03-04T13:00:00.000Z")
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": rotated}), 403, forbidden)
	assert.Equal(t, rawRequest(t, s, http.MethodPost, "/-/fake/clock?advance=soon", "", nil).Status, 400)

	rotated = decode[map[string]string](t, rawRequest(t, s, http.MethodPost, "/-/fake/runners/"+id+"/rotate", "", nil).Body)["token"]
	assert.Equal(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": rotated}).Status, 200)
	resp = rawRequest(t, s, http.MethodPost, "/-/fake/runners/"+id+"/expire", "", nil)
	assert.Equal(t, resp.Status, 200)
	assertResponse(t, rawRequest(t, s, http.MethodPost, "/api/v4/runners/verify", "", map[string]any{"token": rotated}), 403, forbidden)

	assert.Equal(t, rawRequest(t, s, http.MethodDelete, "/-/fake/runners/"+id, "", nil).Status, http.StatusNoContent)
	assert.Equal(t, len(s.Runners()), 0)
	assert.Equal(t, rawRequest(t, s, http.MethodDelete, "/-/fake/runners/"+id, "", nil).Status, http.StatusNotFound)
	assert.Equal(t, rawRequest(t, s, http.MethodPost, "/-/fake/runners/abc/rotate", "", nil).Status, http.StatusBadRequest)

	var sd Seed
	assert.NilError(t, json.Unmarshal([]byte(rawRequest(t, s, http.MethodGet, "/-/fake/seed", "", nil).Body), &sd))
	assert.DeepEqual(t, sd, seed)

	assert.Equal(t, rawRequest(t, s, http.MethodDelete, "/-/fake/requests", "", nil).Status, http.StatusNoContent)
	assert.Equal(t, len(s.Requests()), 0)
}
