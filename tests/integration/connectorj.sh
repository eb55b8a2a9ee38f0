#!/usr/bin/env bash
# connectorj_client: compiles ConnectorJTest.java against Connector/J into the build tree and
# runs it (see the Java file for what it checks). Prints the Sluice log of the run on failure.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need javac
need java
: "${SLUICE_JAR:?}" "${SLUICE_IT_DIR:?}"
[ -r "$SLUICE_JAR" ] || { echo "FAIL - Connector/J jar $SLUICE_JAR not found (apt install libmariadb-java)" >&2; exit 1; }
out=$SLUICE_IT_DIR/java
mkdir -p "$out"
javac -encoding UTF-8 -Xlint:none -d "$out" -cp "$SLUICE_JAR" "$(dirname "${BASH_SOURCE[0]}")/ConnectorJTest.java"
if java -Dfile.encoding=UTF-8 -cp "$SLUICE_JAR:$out" ConnectorJTest; then
    exit 0
fi
echo "sluice log during this test:" >&2
log_since_start >&2
exit 1
