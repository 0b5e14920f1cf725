# shellcheck shell=bash disable=SC2034 # (the settings are read by the other parts)
# lib.sh - what every kafka.sh command shares: the settings (documented at the
# top of infra/kafka.sh) and the paths derived from them, messages, argument
# checks, the state lock, the Java lookup and the runner for Kafka's Java
# classes. Sourced by infra/kafka.sh; it defines no command.

PROG=${0##*/}

IOT_CACHE=${IOT_CACHE:-${HOME:?HOME is not set}/.cache/iot-pipeline}
KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
KAFKA_LOG4J_VERSION=${KAFKA_LOG4J_VERSION:-2.24.3}
KAFKA_DIST_DIR=${KAFKA_DIST_DIR:-$IOT_CACHE/kafka-$KAFKA_VERSION}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_STATE_DIR=${KAFKA_STATE_DIR:-$IOT_CACHE/kafka-run-$KAFKA_PORT}
KAFKA_HEAP=${KAFKA_HEAP:--Xmx512m -Xms256m}
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:-}
KAFKA_TOOL_OPTS=${KAFKA_TOOL_OPTS:--Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_FRESH=${KAFKA_FRESH:-0}
KAFKA_DEFAULT_TOPICS=${KAFKA_DEFAULT_TOPICS-iot-metrics:3 iot-metrics-dlq:3}
KAFKA_CLUSTER_ID=${KAFKA_CLUSTER_ID:-}

APT_HINT="apt-get install openjdk-17-jre-headless maven"

# The jar cache (fetch.sh fills it) ...
LIBS_DIR=$KAFKA_DIST_DIR/libs
CONF_DIR=$KAFKA_DIST_DIR/config
# ... and the state of one broker (state.sh writes it, broker.sh runs from it).
STATE_MARKER=.iot-kafka-state
PROPS=$KAFKA_STATE_DIR/server.properties
PID_FILE=$KAFKA_STATE_DIR/kafka.pid
SERVER_LOG=$KAFKA_STATE_DIR/server.log
DATA_DIR=$KAFKA_STATE_DIR/data

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)); }

# Validate the settings every command but help depends on and derive the rest.
check_settings() {
    is_port "$KAFKA_PORT" || die "KAFKA_PORT must be a TCP port number, got '$KAFKA_PORT'"
    KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
    is_port "$KAFKA_CONTROLLER_PORT" ||
        die "KAFKA_CONTROLLER_PORT must be a TCP port number, got '$KAFKA_CONTROLLER_PORT'"
    ((KAFKA_CONTROLLER_PORT != KAFKA_PORT)) ||
        die "KAFKA_CONTROLLER_PORT must differ from KAFKA_PORT ($KAFKA_PORT)"
    is_uint "$KAFKA_START_TIMEOUT" || die "KAFKA_START_TIMEOUT must be a number of seconds"
    is_uint "$KAFKA_STOP_TIMEOUT" || die "KAFKA_STOP_TIMEOUT must be a number of seconds"
    KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}
}

# Take an exclusive lock on FILE through file descriptor 9 (if flock exists).
# Only one lock is held at a time; unlock releases it.
lock() {
    command -v flock >/dev/null 2>&1 || return 0
    mkdir -p "$(dirname "$1")"
    exec 9>"$1"
    flock -w 300 9 || die "timed out waiting for the lock $1 (another $PROG running?)"
}
unlock() { exec 9>&-; }

# Serialises start, stop and --fresh of the broker of $KAFKA_STATE_DIR.
lock_state() { lock "${KAFKA_STATE_DIR%/}.lock"; }

with_timeout() { # SECONDS CMD... (runs CMD without a limit where timeout(1) is missing)
    local secs=$1
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout "$secs" "$@"
    else
        "$@"
    fi
}

# Set JAVA to a Java 17+ executable or fail with how to install one.
find_java() {
    if [[ -n ${JAVA:-} ]]; then
        command -v "$JAVA" >/dev/null 2>&1 || die "JAVA=$JAVA is not an executable. Install Java 17+: $APT_HINT"
    elif [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
        JAVA=$JAVA_HOME/bin/java
    elif command -v java >/dev/null 2>&1; then
        JAVA=java
    else
        die "java not found (Kafka $KAFKA_VERSION needs Java 17 or newer). Install it: $APT_HINT (or set JAVA / JAVA_HOME)"
    fi
    local version_line major
    version_line=$("$JAVA" -version 2>&1 | head -n 1) || true
    if [[ $version_line =~ version\ \"([0-9]+)(\.([0-9]+))? ]]; then
        major=${BASH_REMATCH[1]}
        ((major == 1)) && major=${BASH_REMATCH[3]}
        ((major >= 17)) ||
            die "Kafka $KAFKA_VERSION needs Java 17 or newer, but $JAVA is: $version_line. Install it: $APT_HINT (or set JAVA / JAVA_HOME)"
    else
        die "could not run '$JAVA -version' (got: '${version_line:-nothing}'). Install Java 17+: $APT_HINT"
    fi
}

# Run a Java class from the Kafka classpath with the tool JVM settings.
# TOOL_TIMEOUT (seconds) bounds its run time when set.
run_tool() {
    local -a opts limit=()
    read -r -a opts <<<"$KAFKA_TOOL_OPTS"
    [[ -n ${TOOL_TIMEOUT:-} ]] && limit=(with_timeout "$TOOL_TIMEOUT")
    # (${a[@]+"${a[@]}"} expands an empty array safely under set -u in bash 3.2 too)
    ${limit[@]+"${limit[@]}"} "$JAVA" "${opts[@]}" -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$CONF_DIR/tools-log4j2.properties" \
        -cp "$LIBS_DIR/*" "$@" 9>&-
}
