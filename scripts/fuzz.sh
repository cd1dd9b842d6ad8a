#!/bin/sh
# Runs every fuzz target for FUZZTIME each (default 60s) and keeps the corpus it grew: the inputs
# the engine found interesting are copied from the Go build cache into the package's
# testdata/fuzz/<target>/, where plain `go test` (and so CI) replays them. A failing input is
# written there by the go command itself; the run then stops with its report.
set -eu
FUZZTIME=${FUZZTIME:-60s}
cache=$(go env GOCACHE)/fuzz/github.com/scorekit/scorekit
targets="tensor:FuzzDecodeNpy ops:FuzzBrownianInterval ops/target:FuzzParse cmd/scorekit:FuzzParseConstraint cmd/scorekit:FuzzParseObjective cmd/scorekit:FuzzFlags nn:FuzzRead nn:FuzzReadHeader"
for t in $targets; do
	pkg=${t%%:*}
	name=${t#*:}
	echo "fuzz: $pkg $name for $FUZZTIME"
	go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "./$pkg"
	if [ -d "$cache/$pkg/$name" ]; then
		mkdir -p "$pkg/testdata/fuzz/$name"
		cp -n "$cache/$pkg/$name"/* "$pkg/testdata/fuzz/$name"/ 2>/dev/null || true
		echo "fuzz: $pkg/testdata/fuzz/$name holds $(ls "$pkg/testdata/fuzz/$name" | wc -l) inputs"
	fi
done
