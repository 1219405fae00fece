#!/usr/bin/env bash
# make demo: start the built-in fake GitLab, then create a runner, re-run, look at the stored
# variable, rotate the token and check status, the way a scheduled pipeline would, and prove
# that no token was printed anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${BIN:-$PWD/bin}
work=$(mktemp -d)
log="$work/everything-printed.log"
cleanup() { [ -n "${fake_pid:-}" ] && kill "$fake_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
  printf '$'; printf ' %q' "$@"; printf '\n'
  "$@" 2>&1 | tee -a "$log"
  return "${PIPESTATUS[0]}"
}

say "Starting the fake GitLab (seeded with group 'platform' and project 'platform/deploy', id 42)"
"$BIN/gitlabfake" --addr 127.0.0.1:0 --env-file "$work/fake.env" >"$work/fake.out" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do grep -q '^GITLAB_TOKEN=' "$work/fake.env" 2>/dev/null && break; sleep 0.05; done
set -a; . "$work/fake.env"; set +a
export CI_SERVER_URL="$GITLAB_URL"
GITLAB_TOKEN="$MAINTAINER_TOKEN"   # a Maintainer of platform/deploy with the api scope
export GITLAB_TOKEN
echo "fake GitLab at $GITLAB_URL; GITLAB_TOKEN is a Maintainer's access token (not shown)"

rb="$BIN/runner-bootstrap"
say "1. Create a project runner and store its token in the CI/CD variable RUNNER_TOKEN"
run "$rb" create --project-id platform/deploy --description "deploy runner" --tag-list docker,linux --log-level warn

say "2. Run it again: nothing changes, nothing is written"
run "$rb" create --project-id platform/deploy --description "deploy runner" --tag-list docker,linux --log-level warn

say "3. What GitLab now stores (the API itself never returns a hidden value)"
if command -v curl >/dev/null; then
  printf '$ curl $GITLAB_URL/api/v4/projects/42/variables/RUNNER_TOKEN\n'
  curl -sf -H "PRIVATE-TOKEN: $GITLAB_TOKEN" "$GITLAB_URL/api/v4/projects/42/variables/RUNNER_TOKEN" | tee -a "$log"; echo
else
  echo "(curl is not installed: skipping the raw API view)"
fi

say "4. Rotate the token, as a scheduled pipeline does (the old token stops working at once)"
run "$rb" rotate --project-id platform/deploy --log-level warn

say "5. Status, for alerts: exit code 0 means healthy"
run "$rb" status --project-id platform/deploy
echo "exit code: $?"

say "6. JSON for scripts"
run "$rb" status --project-id platform/deploy -o json

say "7. Was any token printed?"
# The fake's state (every token it issued), with curl or, without it, bash's /dev/tcp.
state() {
  if command -v curl >/dev/null; then curl -sf "$GITLAB_URL/-/fake/state"; return; fi
  local hostport=${GITLAB_URL#http://}
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"
  printf 'GET /-/fake/state HTTP/1.0\r\nHost: %s\r\n\r\n' "$hostport" >&3
  cat <&3
  exec 3<&-
}
tokens=$(state | grep -oE 'glrt-[A-Za-z0-9_.-]+' | sort -u || true)
leaks=0
for t in $tokens; do
  if grep -qF "$t" "$log"; then leaks=$((leaks + 1)); fi
done
if grep -qE 'glrt-[A-Za-z0-9_-]{6,}|glpat-[A-Za-z0-9_-]{6,}' "$log"; then leaks=$((leaks + 1)); fi
if [ "$leaks" -eq 0 ]; then
  n=$(echo "$tokens" | wc -w)
  if [ "$n" -eq 1 ]; then what="1 runner token exists"; else what="$n runner tokens exist"; fi
  echo "no: $what on the server and none appears in anything printed above"
else
  echo "YES: a token was printed; this is a bug" >&2
  exit 1
fi
