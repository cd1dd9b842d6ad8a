#!/bin/sh
# emu-skip.sh DIR... prints one `go test -skip` pattern naming the tests of the packages in DIR...
# that the default build compiles too (test files whose //go:build line does not mention cuda):
# the CPU suite runs those, and they never reach a device, so the emulated runs skip them. It
# fails when such a name is also the name of a test in a cuda-tagged file of those packages, which
# the pattern would skip with it.
set -eu
names() { # names FILE...: the Test and Example functions of the files, one per line
	[ $# -gt 0 ] || return 0
	grep -hoE '^func (Test|Example)[A-Za-z0-9_]+' "$@" | sed 's/^func //' | grep -vx TestMain | sort -u
}
host=""
dev=""
for d in "$@"; do
	for f in "$d"/*_test.go; do
		[ -e "$f" ] || continue
		if head -n 5 "$f" | grep -qE '^//go:build .*cuda'; then
			dev="$dev $f"
		else
			host="$host $f"
		fi
	done
done
# shellcheck disable=SC2086
hostnames=$(names $host)
# shellcheck disable=SC2086
devnames=$(names $dev)
both=$( { printf '%s\n' "$hostnames"; printf '%s\n' "$devnames"; } | grep -v '^$' | sort | uniq -d)
if [ -n "$both" ]; then
	echo "emu-skip.sh: tests of both a default-build and a cuda-tagged file (rename one):" $both >&2
	exit 1
fi
[ -n "$hostnames" ] || { echo '^$'; exit 0; }
echo "^($(printf '%s\n' "$hostnames" | paste -sd'|' -))\$"
