package e2e

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/icmd"

	"gitlab.com/runner-bootstrap/runner-bootstrap/test/gitlabfake"
)

const expiryFleet = `runners:
  - project_id: 42
    description: short-lived
    token_expires_in: 2h
    token_rotation_deadline_in: 30m
    variable: {key: SHORT_TOKEN}
  - project_id: 42
    description: long-lived
    token_expires_in: 168h
    variable: {key: LONG_TOKEN}
`

// TestManifestTokenExpiry: the manifest's token_expires_in and token_rotation_deadline_in reach
// GitLab on 18.10 EE Premium, and on CE apply refuses before any write.
func TestManifestTokenExpiry(t *testing.T) {
	t.Run("18.10-ee-premium", func(t *testing.T) {
		t.Parallel()
		fake, seed := gitlabfake.NewTest(t, gitlabfake.GitLab("18.10.0-ee", gitlabfake.TierPremium))
		tg := &target{url: seed.URL, fake: fake, seed: seed}
		tg.secrets = append(tg.secrets, seed.MaintainerToken)
		fleet := writeFleet(t, expiryFleet)
		start := fake.AdvanceClock(0)
		tg.run(t, seed.MaintainerToken, nil, "apply", "--file", fleet).Assert(t, icmd.Success)
		end := fake.AdvanceClock(0)

		want := map[string]time.Duration{"short-lived": 2 * time.Hour, "long-lived": 168 * time.Hour}
		runners := fake.Runners()
		assert.Assert(t, is.Len(runners, 2))
		for _, r := range runners {
			d, ok := want[r.Description]
			assert.Assert(t, ok, r.Description)
			assert.Assert(t, r.TokenExpiresAt != nil, "%s has an expiry", r.Description)
			// Computed on GitLab's clock and truncated to the second.
			lo, hi := start.Add(d).Truncate(time.Second), end.Add(d)
			assert.Check(t, !r.TokenExpiresAt.Before(lo) && !r.TokenExpiresAt.After(hi),
				"%s expires at %s, expected %s from GitLab's now (%s..%s)", r.Description, r.TokenExpiresAt, d, lo, hi)
		}
		for _, key := range []string{"SHORT_TOKEN", "LONG_TOKEN"} {
			v, ok := fake.Variable("project", 42, key, "*")
			assert.Check(t, ok && v.Masked, key)
		}

		before := tg.writes()
		tg.run(t, seed.MaintainerToken, nil, "apply", "--file", fleet).Assert(t, icmd.Success)
		assert.Check(t, is.Equal(tg.writes(), before), "a re-run writes nothing")
	})
	t.Run("18.10-ce", func(t *testing.T) {
		t.Parallel()
		fake, seed := gitlabfake.NewTest(t, gitlabfake.GitLab("18.10.0", ""))
		tg := &target{url: seed.URL, fake: fake, seed: seed}
		tg.secrets = append(tg.secrets, seed.MaintainerToken)
		before := tg.writes()
		res := tg.run(t, seed.MaintainerToken, nil, "apply", "--file", writeFleet(t, expiryFleet))
		res.Assert(t, icmd.Expected{ExitCode: 2, Err: "18.10"})
		assert.Check(t, is.Equal(tg.writes(), before), "nothing written")
		assert.Check(t, is.Len(fake.Runners(), 0))
	})
}

// TestManifestTokenExpiryBadInput: durations are checked at their line, before GitLab is asked.
func TestManifestTokenExpiryBadInput(t *testing.T) {
	tg := newTarget(t)
	tg.needFake(t)
	for body, msg := range map[string]string{
		"runners:\n  - project_id: 42\n    token_expires_in: 7\n":                                      `fleet.yaml:3: runners[0].token_expires_in is 7: expected a duration such as 168h or 30m`,
		"runners:\n  - project_id: 42\n    token_expires_in: 1m\n":                                     "GitLab accepts 5m to 360h",
		"runners:\n  - project_id: 42\n    token_expires_in: 1h\n    token_rotation_deadline_in: 2h\n": "the deadline can be at most the expiry",
	} {
		tg.fake.ResetRequests()
		tg.run(t, tg.seed.MaintainerToken, nil, "apply", "--file", writeFleet(t, body)).Assert(t, icmd.Expected{ExitCode: 2, Err: msg})
		assert.Check(t, is.Len(tg.fake.Requests(), 0), "nothing reached GitLab")
	}
}
