#!/usr/bin/env bash
# connectorj_bulk: compiles BulkTest.java against Connector/J into the build tree and runs it:
# a 1,000-row useBulkStmts batch directly and through Sluice, bulk execution proven by the
# primary's own counters (see the Java file). Prints the Sluice log of the run on failure.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need javac
need java
: "${SLUICE_JAR:?}" "${SLUICE_IT_DIR:?}" "${SLUICE_REPLICA1_PORT:?}" "${SLUICE_REPLICA2_PORT:?}"
[ -r "$SLUICE_JAR" ] || { echo "FAIL - Connector/J jar $SLUICE_JAR not found (apt install libmariadb-java)" >&2; exit 1; }
out=$SLUICE_IT_DIR/java-bulk
mkdir -p "$out"
javac -encoding UTF-8 -Xlint:none -d "$out" -cp "$SLUICE_JAR" "$(dirname "${BASH_SOURCE[0]}")/BulkTest.java"
if java -Dfile.encoding=UTF-8 -cp "$SLUICE_JAR:$out" BulkTest; then
    exit 0
fi
echo "sluice log during this test:" >&2
log_since_start >&2
exit 1
