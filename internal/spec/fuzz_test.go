package spec_test

import (
	"strings"
	"testing"
	"time"

	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/fail"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/lifecycle"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/record"
	"gitlab.com/runner-bootstrap/runner-bootstrap/internal/spec"
)

// FuzzValidate: Validate never panics on any spec; a refusal is one line with the bad-input exit
// code; and every spec it accepts names a variable whose target survives the round trip through
// a runner's marker, which is how the next run finds the runners created for it.
func FuzzValidate(f *testing.F) {
	f.Add("project_type", "platform/deploy", "", "deploy", "docker,linux", "not_protected", "", int64(3600), true, "RUNNER_TOKEN", "", "", "*", "env_var")
	f.Add("group_type", "", "platform/runners", "", "", "ref_protected", "note\nsecond line", int64(0), false, "GROUP_RUNNER", "project", "platform/deploy", "production", "file")
	f.Add("instance_type", "", "", "shared", "a,,b", "", "", int64(599), true, "K", "instance", "", "review/*", "env_var")
	f.Add("project_type", "42", "", "", "", "protected", "", int64(-1), true, "RUNNER-TOKEN", "group", "10", "${CI_ENVIRONMENT}", "yaml")
	f.Add("shared", "/a/", "a//b", strings.Repeat("d", 1025), "x", "", strings.Repeat("n", 900), int64(600), true, strings.Repeat("K", 256), "project", "a b", "", "env_var")
	f.Add("", "a\nb", "", "", "", "", "", int64(0), true, "", "", "", "*", "")
	f.Fuzz(func(t *testing.T, typ, projectRef, groupRef, desc, tags, access, note string, maxTimeout int64, runUntagged bool, key, owner, ownerRef, scope, varType string) {
		s := spec.New()
		s.Runner = spec.Runner{
			Type: spec.RunnerType(typ), ProjectRef: projectRef, GroupRef: groupRef, Description: desc,
			RunUntagged: runUntagged, AccessLevel: access, MaximumTimeout: maxTimeout, MaintenanceNote: note,
		}
		if tags != "" {
			s.Runner.TagList = strings.Split(tags, ",")
		}
		s.Variable = spec.Variable{Key: key, Owner: spec.OwnerKind(owner), OwnerRef: ownerRef, EnvironmentScope: scope, Type: varType, Protected: true, Hidden: true}
		s.DefaultOwner()
		err := s.Validate()
		if err != nil {
			msg := err.Error()
			if msg == "" || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("a validation error must be one non-empty line, got %q", msg)
			}
			if code := fail.Code(err); code != fail.CodeUsage {
				t.Fatalf("a validation error must exit %d (bad input), got %d: %s", fail.CodeUsage, code, msg)
			}
			return
		}
		// Accepted: the variable's target, with its owner resolved to an id, must read back.
		v := s.Variable
		target := spec.Target(v.Owner, 42, v.Key, v.EnvironmentScope)
		ref, ok := lifecycle.ParseTarget(target)
		if !ok || ref.Key != v.Key || (v.Owner != spec.OwnerInstance && (ref.Scope != v.EnvironmentScope || ref.OwnerID != 42 || ref.Owner != v.Owner)) {
			t.Fatalf("target %q of an accepted spec does not parse back (got %+v, %t)", target, ref, ok)
		}
		user := s.Runner.MaintenanceNote
		created := time.Unix(1_800_000_000, 0).UTC()
		gotNote, m, ok := record.ParseNote(record.ComposeNote(user, record.Runner{Target: target, CreatedAt: created}))
		if !ok || m.Target != target || !m.CreatedAt.Equal(created) || gotNote != strings.TrimRight(user, "\n ") {
			t.Fatalf("the marker of an accepted spec does not survive the maintenance note: target %q, note %q -> %q, %+v, %t", target, user, gotNote, m, ok)
		}
	})
}
