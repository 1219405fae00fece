#!/bin/sh
# Prints the release notes of one version: its section of CHANGELOG.md, a ready-to-paste
# include: snippet for that version and the job image with its digest. The release job writes
# them to a file for the release: keyword. It stops with one sentence, and writes nothing, when
# something the notes need is missing, so no release goes out without them.
#
# Environment (the CI defaults in brackets):
#   RELEASE_VERSION  the version, a bare semantic version such as 1.2.3  [CI_COMMIT_TAG]
#   COMPONENT_PATH   where the components live  [CI_SERVER_FQDN/CI_PROJECT_PATH]
#   RELEASE_IMAGE    the job image of the release, without digest  [CI_REGISTRY_IMAGE:version]
#   IMAGE_DIGEST     that image's digest, sha256:<64 hex>  (image:promote's dotenv report)
#   CHANGELOG        [CHANGELOG.md]     TEMPLATES  [templates]     COMPAT  [compat]
set -eu

fail() {
	printf 'release-notes: %s\n' "$*" >&2
	exit 1
}

version=${RELEASE_VERSION:-${CI_COMMIT_TAG:-}}
[ -n "$version" ] || fail "no version: set RELEASE_VERSION or run on a tag (CI_COMMIT_TAG)."
expr "$version" : '[0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*$' >/dev/null ||
	fail "version \"$version\" is not a bare semantic version such as 1.2.3 (no v prefix: the catalog's @1 and @1.2 shorthands match digits only)."

component_path=${COMPONENT_PATH:-}
if [ -z "$component_path" ] && [ -n "${CI_SERVER_FQDN:-}" ] && [ -n "${CI_PROJECT_PATH:-}" ]; then
	component_path=$CI_SERVER_FQDN/$CI_PROJECT_PATH
fi
[ -n "$component_path" ] || fail "no component path: set COMPONENT_PATH or CI_SERVER_FQDN and CI_PROJECT_PATH."

image=${RELEASE_IMAGE:-}
if [ -z "$image" ] && [ -n "${CI_REGISTRY_IMAGE:-}" ]; then
	image=$CI_REGISTRY_IMAGE:$version
fi
[ -n "$image" ] || fail "no job image: set RELEASE_IMAGE or CI_REGISTRY_IMAGE."
digest=${IMAGE_DIGEST:-}
expr "$digest" : 'sha256:[0-9a-f]\{64\}$' >/dev/null ||
	fail "IMAGE_DIGEST \"$digest\" is not an image digest (sha256: and 64 hex digits); image:promote reports it."

changelog=${CHANGELOG:-CHANGELOG.md}
[ -r "$changelog" ] || fail "cannot read $changelog."
# The lines after "## 1.2.3" or "## [1.2.3] - date", up to the next "## " heading.
section=$(awk -v v="$version" '
	/^## / {
		if (found) exit
		h = $0
		sub(/^##[ \t]+/, "", h)
		sub(/[ \t].*$/, "", h)
		gsub(/\[|\]/, "", h)
		if (h == v) { found = 1; next }
	}
	found { print }
' "$changelog")
[ -n "$(printf '%s' "$section" | tr -d ' \t\n')" ] ||
	fail "$changelog has no section \"## [$version]\" with the changes of this release."

templates=${TEMPLATES:-templates}
names=
for f in "$templates"/*.yml "$templates"/*/template.yml; do
	[ -f "$f" ] || continue
	case $f in
	*/template.yml) n=$(basename "$(dirname "$f")") ;;
	*) n=$(basename "$f" .yml) ;;
	esac
	names="$names${names:+, }$n"
done
[ -n "$names" ] || fail "no component under $templates/."
# Every component has its generated file for GitLab before 18.10 (test/pipeline TestCompatFiles).
compat=${COMPAT:-compat}
for n in $(printf '%s' "$names" | tr -d ,); do
	[ -f "$compat/$n.yml" ] || fail "$compat/$n.yml is missing: regenerate compat/ with go test ./test/pipeline -run TestCompatFiles -update."
done
# include:project names the project without the host.
project_path=${component_path#*/}
# The snippet includes create-runner, which works with no inputs; the comment names the others.
first=create-runner
[ -f "$templates/$first.yml" ] || [ -f "$templates/$first/template.yml" ] || first=${names%%,*}

printf '%s\n\n' "$section" | awk 'NF { blank = 0; started = 1 } !NF { blank++ } started && blank < 2'
cat <<NOTES
## Use this version

\`\`\`yaml
include:
  # Components of this release: $names.
  - component: $component_path/$first@$version
\`\`\`

\`@$version\` is this release exactly; \`@${version%.*}\` and \`@${version%%.*}\` follow its newest patch
and minor releases. The jobs run the image released with the version you include.

### On GitLab 16.11 to 18.9

The components need GitLab 18.10 or later. On an older GitLab, include the same jobs from this
release's \`compat/\` files (on a self-managed instance from your mirror of the project), with the
same inputs plus \`version\`, which pins the image as the component's version does:

\`\`\`yaml
include:
  - project: $project_path  # or your mirror's path
    ref: $version
    file: /compat/$first.yml
    inputs:
      version: $version
\`\`\`

## Job image

\`$image@$digest\`
NOTES
