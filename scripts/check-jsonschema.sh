#!/usr/bin/env bash
# Check Stratum definition files against the published JSON Schemas with the
# third-party validator check-jsonschema (https://github.com/python-jsonschema/check-jsonschema).
# This proves the schemas in schemas/ are usable outside the daemon; it checks
# structure only, not the cross-file semantics that `stratum validate` adds.
#
# usage: scripts/check-jsonschema.sh [DIR...]     (default: definitions examples)
#
# Every *.yaml / *.yml file under the given directories (recursively) whose
# top-level `kind:` names a definition kind is checked against
# schemas/<kind>.schema.json. Files ending in .bad.yaml / .bad.yml (failing
# fixtures) are skipped, and so are YAML files with no top-level `kind:` line
# (a CI workflow, say); each skipped file is noted on stderr.
#
# Output: one line per failing file on stdout, then a summary on stderr.
# Exit status: 0 all files pass, 1 at least one fails, 2 usage or setup error
# (check-jsonschema not installed, a directory missing).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
schemas=${STRATUM_SCHEMAS_DIR:-$root/schemas}

case "${1:-}" in
    -h | --help)
        sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac

if ! command -v check-jsonschema >/dev/null 2>&1; then
    echo "error: check-jsonschema is not installed; install it with 'pipx install check-jsonschema' or 'pip install check-jsonschema'" >&2
    exit 2
fi
if [ ! -d "$schemas" ]; then
    echo "error: schema directory $schemas not found (set STRATUM_SCHEMAS_DIR)" >&2
    exit 2
fi

if [ "$#" -eq 0 ]; then
    cd "$root" || exit 2
    set -- definitions examples
fi
for dir in "$@"; do
    if [ ! -d "$dir" ]; then
        echo "error: $dir is not a directory" >&2
        exit 2
    fi
done

schema_for_kind() {
    case "$1" in
        Source) echo source ;;
        Identity) echo identity ;;
        Trait) echo trait ;;
        RFM) echo rfm ;;
        Segment) echo segment ;;
        Funnel) echo funnel ;;
        Webhook) echo webhook ;;
        Settings) echo settings ;;
        *) return 1 ;;
    esac
}

checked=0
failed=0
skipped=0

while IFS= read -r -d '' file; do
    case "$file" in
        *.bad.yaml | *.bad.yml)
            skipped=$((skipped + 1))
            continue
            ;;
    esac

    # The first top-level `kind:` line; the value may be quoted and followed by a comment.
    kind_line=$(grep -m1 -E '^kind:' "$file" || true)
    if [ -z "$kind_line" ]; then
        echo "skip: $file (no top-level kind:, not a definition)" >&2
        skipped=$((skipped + 1))
        continue
    fi
    kind=$(printf '%s\n' "$kind_line" | sed -E 's/^kind:[[:space:]]*//; s/[[:space:]]+#.*$//; s/^["'\'']//; s/["'\'']$//; s/[[:space:]]+$//')

    checked=$((checked + 1))
    if ! schema_name=$(schema_for_kind "$kind"); then
        echo "FAIL $file: unknown kind '$kind' (expected Source, Identity, Trait, RFM, Segment, Funnel, Webhook or Settings)"
        failed=$((failed + 1))
        continue
    fi
    schema="$schemas/$schema_name.schema.json"
    if [ ! -f "$schema" ]; then
        echo "FAIL $file: schema $schema not found"
        failed=$((failed + 1))
        continue
    fi

    if output=$(check-jsonschema --color never --schemafile "$schema" "$file" 2>&1); then
        continue
    fi
    failed=$((failed + 1))
    # Fold check-jsonschema's multi-line report into one line: each schema error
    # ("  FILE::$.path: message", plus its "Best Match:" when a oneOf/anyOf
    # failed) and each YAML parse error ("message" followed by
    # 'in "<byte string>", line L, column C:') becomes one " | "-separated item.
    errors=$(printf '%s\n' "$output" | awk -v f="$file" '
        function add(s) { out = (out == "" ? s : out " | " s) }
        { line = $0; sub(/^[ \t]+/, "", line) }
        index(line, f "::") == 1 { add(substr(line, length(f) + 3)); next }
        line == "Best Match:" { best = 1; next }
        best && line != "" { out = out " (best match: " line ")"; best = 0; next }
        line ~ /^in "<byte string>", line [0-9]+, column [0-9]+:$/ {
            at = line; sub(/^in "<byte string>", /, "", at); sub(/:$/, "", at)
            if (prev != "") add(prev " (" at ")")
            prev = ""; next
        }
        { prev = line }
        END { print out }')
    if [ -z "$errors" ]; then
        errors=$(printf '%s\n' "$output" | grep -v -E '^[[:space:]]*$|^Schema validation errors|^Several files failed' | head -n 1 | sed -E 's/^[[:space:]]*//')
    fi
    echo "FAIL $file ($schema_name.schema.json): $errors"
done < <(find -L "$@" -mindepth 1 -name '.*' -prune -o -type f \( -iname '*.yaml' -o -iname '*.yml' \) -print0 2>/dev/null | sort -z)

echo "check-jsonschema: $checked checked, $failed failed, $skipped skipped" >&2
if [ "$failed" -gt 0 ]; then
    exit 1
fi
exit 0
