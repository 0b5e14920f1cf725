#!/usr/bin/env bash
# kafka.sh - a real single-node Apache Kafka broker (KRaft mode) for local
# development and CI of the IoT pipeline, without Docker.
#
# The Kafka jars are resolved once from Maven Central with Maven and cached
# outside the repository; later runs reuse the cache and need no network.
# The broker listens on 127.0.0.1 only.
#
# Usage: infra/kafka.sh COMMAND [ARGS...]   (see `infra/kafka.sh --help`)
#
# Environment (all optional):
#   IOT_CACHE              cache root for downloads and broker state
#                          (default: $HOME/.cache/iot-pipeline)
#   KAFKA_VERSION          Apache Kafka version taken from Maven Central
#                          (default: 4.1.1; artifacts org.apache.kafka:kafka_2.13
#                          and org.apache.kafka:kafka-tools)
#   KAFKA_LOG4J_VERSION    version of the log4j-slf4j-impl logging binding
#                          (default: 2.24.3, the log4j release Kafka 4.1 uses)
#   KAFKA_DIST_DIR         where the jars are cached
#                          (default: $IOT_CACHE/kafka-$KAFKA_VERSION)
#   KAFKA_PORT             client (PLAINTEXT) port on 127.0.0.1 (default: 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1
#                          (default: KAFKA_PORT + 1)
#   KAFKA_STATE_DIR        config, data, pid file and server.log of the broker
#                          (default: $IOT_CACHE/kafka-run-$KAFKA_PORT)
#   KAFKA_HEAP             broker heap options (default: "-Xmx512m -Xms256m")
#   KAFKA_JVM_OPTS         extra JVM options for the broker (default: none)
#   KAFKA_TOOL_OPTS        JVM options for the admin and console tools
#                          (default: "-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1")
#   KAFKA_START_TIMEOUT    seconds `start` waits for the broker to serve
#                          requests (default: 90)
#   KAFKA_STOP_TIMEOUT     seconds `stop` waits for a clean shutdown before
#                          SIGKILL (default: 30)
#   KAFKA_FRESH            1 = wipe the state dir on `start`, like --fresh
#                          (default: 0)
#   KAFKA_DEFAULT_TOPICS   topics ensured after `start`, as space-separated
#                          NAME:PARTITIONS (default: "iot-metrics:3 iot-metrics-dlq:3";
#                          empty = none)
#   KAFKA_CLUSTER_ID       cluster id used when storage is first formatted
#                          (default: a random one)
#   KAFKA_BOOTSTRAP        broker address used by topics/create-topic/describe/
#                          produce/consume (default: 127.0.0.1:$KAFKA_PORT)
#   JAVA                   java executable (default: $JAVA_HOME/bin/java if
#                          set, else java on PATH); Java 17 or newer
#   MVN                    maven executable (default: mvn on PATH); only needed
#                          while the jars are not cached yet
set -euo pipefail

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

MAVEN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
APT_HINT="apt-get install openjdk-17-jre-headless maven"

LIBS_DIR=$KAFKA_DIST_DIR/libs
CONF_DIR=$KAFKA_DIST_DIR/config
STATE_MARKER=.iot-kafka-state
PROPS=$KAFKA_STATE_DIR/server.properties
PID_FILE=$KAFKA_STATE_DIR/kafka.pid
SERVER_LOG=$KAFKA_STATE_DIR/server.log
DATA_DIR=$KAFKA_STATE_DIR/data

usage() {
    cat <<EOF
Usage: $PROG COMMAND [ARGS...]

A single-node Apache Kafka $KAFKA_VERSION broker (KRaft, broker+controller)
on 127.0.0.1:$KAFKA_PORT, run from jars fetched with Maven. No Docker needed.

Commands:
  start [--fresh]              fetch Kafka if needed, format storage once, start
                               the broker, wait until it serves requests and
                               ensure the default topics ($KAFKA_DEFAULT_TOPICS).
                               Does nothing if the broker is already up.
                               --fresh (or KAFKA_FRESH=1) wipes the state first.
  stop                         stop the broker (SIGTERM, SIGKILL after
                               ${KAFKA_STOP_TIMEOUT}s); succeeds if none is running
  restart [--fresh]            stop, then start
  status                       print broker state; exit 0 if it is running and
                               serving, 1 if running but not serving, 3 if stopped
  create-topic NAME PARTITIONS create a topic (replication factor 1) unless it exists
  topics                       list topics
  describe [TOPIC]             describe one or all topics
  produce TOPIC                send stdin to TOPIC, one message per line
  consume TOPIC [MAX [MS]]     print up to MAX messages (default 10) of TOPIC from
                               the beginning, waiting at most MS ms (default 10000)
  run-class CLASS [ARGS...]    run any Java class of the Kafka classpath, e.g.
                               org.apache.kafka.tools.consumer.ConsoleConsumer
  fetch                        only download the Kafka jars into the cache
  classpath                    print the Java classpath of the cached jars
  logs [LINES]                 print the last LINES (default 50) of server.log
  help, --help, -h             this text

Paths:
  jars   $LIBS_DIR
  state  $KAFKA_STATE_DIR  (server.properties, data/, server.log, kafka.pid)

Environment knobs (see the top of this script for details):
  IOT_CACHE KAFKA_VERSION KAFKA_LOG4J_VERSION KAFKA_DIST_DIR KAFKA_PORT
  KAFKA_CONTROLLER_PORT KAFKA_STATE_DIR KAFKA_HEAP KAFKA_JVM_OPTS KAFKA_TOOL_OPTS
  KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT KAFKA_FRESH KAFKA_DEFAULT_TOPICS
  KAFKA_CLUSTER_ID KAFKA_BOOTSTRAP JAVA MVN
EOF
}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_port() { [[ $1 =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)); }

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

# ---------------------------------------------------------------- java / maven

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

find_mvn() {
    MVN=${MVN:-mvn}
    command -v "$MVN" >/dev/null 2>&1 ||
        die "Maven ('$MVN') not found; it is needed once to fetch Kafka $KAFKA_VERSION from Maven Central. Install it: $APT_HINT (or set MVN)"
}

# Take an exclusive lock on FILE through file descriptor 9 (if flock exists).
lock() {
    command -v flock >/dev/null 2>&1 || return 0
    mkdir -p "$(dirname "$1")"
    exec 9>"$1"
    flock -w 300 9 || die "timed out waiting for the lock $1 (another $PROG running?)"
}

write_pom() {
    cat >"$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by kafka.sh: the runtime classpath of a Kafka broker and its CLI tools. -->
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.iot-pipeline</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- broker: kafka.Kafka, kafka.tools.StorageTool -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- CLI tools: TopicCommand, ConsoleProducer, consumer.ConsoleConsumer -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- SLF4J 1.x -> log4j2 binding (log4j-api/-core come with Kafka) -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$KAFKA_LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
}

write_file_atomic() { # PATH CONTENT
    local tmp
    tmp=$(mktemp "$1.XXXXXX")
    printf '%s\n' "$2" >"$tmp"
    mv -f "$tmp" "$1"
}

write_tool_configs() {
    mkdir -p "$CONF_DIR"
    write_file_atomic "$CONF_DIR/tools-log4j2.properties" "# Kafka CLI tools: warnings and errors to stderr.
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR"
    # Short client timeouts so that a missing broker fails fast instead of
    # hanging for the 60 s default.
    write_file_atomic "$CONF_DIR/admin.properties" "request.timeout.ms=5000
default.api.timeout.ms=15000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=5000"
}

# Resolve the Kafka jars into $LIBS_DIR once; later calls return immediately.
ensure_dist() {
    if [[ ! -f $KAFKA_DIST_DIR/.complete ]]; then
        lock "$KAFKA_DIST_DIR.lock"
        if [[ ! -f $KAFKA_DIST_DIR/.complete ]]; then
            find_mvn
            mkdir -p "$KAFKA_DIST_DIR"
            write_pom "$KAFKA_DIST_DIR/pom.xml"
            log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS_DIR ..."
            local start=$SECONDS
            rm -rf "$LIBS_DIR.tmp"
            # (sed drops the bare colour-reset codes that quiet Maven prints)
            if ! "$MVN" -B -q -Dstyle.color=never -f "$KAFKA_DIST_DIR/pom.xml" \
                "$MAVEN_DEPENDENCY_PLUGIN:copy-dependencies" \
                -DincludeScope=runtime -DoutputDirectory="$LIBS_DIR.tmp" 2>&1 |
                sed -e $'s/\033\\[[0-9;]*m//g' -e '/^$/d' >&2; then
                rm -rf "$LIBS_DIR.tmp"
                die "Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (see its output above). Check that Maven Central is reachable and that KAFKA_VERSION=$KAFKA_VERSION exists."
            fi
            local jar
            for jar in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar"; do
                [[ -f $LIBS_DIR.tmp/$jar ]] || die "Maven did not deliver $jar; the cache in $KAFKA_DIST_DIR is unusable"
            done
            rm -rf "$LIBS_DIR"
            mv "$LIBS_DIR.tmp" "$LIBS_DIR"
            write_tool_configs
            date -u +%Y-%m-%dT%H:%M:%SZ >"$KAFKA_DIST_DIR/.complete"
            log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l | tr -d ' ') jars in $((SECONDS - start))s"
        fi
        exec 9>&-
    fi
    [[ -f $CONF_DIR/admin.properties && -f $CONF_DIR/tools-log4j2.properties ]] || write_tool_configs
}

with_timeout() { # SECONDS CMD... (runs CMD without a limit where timeout(1) is missing)
    local secs=$1
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout "$secs" "$@"
    else
        "$@"
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

topic_cmd() {
    run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
        --command-config "$CONF_DIR/admin.properties" "$@"
}

# ------------------------------------------------------------- processes, ports

port_open() { # PORT -> 0 if something accepts TCP connections on 127.0.0.1:PORT
    with_timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

proc_args() { # PID -> its command line, empty if gone
    if [[ -r /proc/$1/cmdline ]]; then
        tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
    else
        ps -o args= -p "$1" 2>/dev/null || true
    fi
}

is_our_broker() { # PID
    local args
    args=$(proc_args "$1")
    [[ $args == *" kafka.Kafka $PROPS"* ]]
}

# Print the pid of the broker that runs from $KAFKA_STATE_DIR, or fail.
broker_pid() {
    [[ -d $KAFKA_STATE_DIR ]] || return 1
    local pid=""
    [[ -f $PID_FILE ]] && pid=$(tr -dc '0-9' <"$PID_FILE")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && is_our_broker "$pid"; then
        echo "$pid"
        return 0
    fi
    # The pid file is stale or missing: look for the process by its config path.
    local p
    if [[ -d /proc ]]; then
        for p in /proc/[0-9]*; do
            p=${p#/proc/}
            if is_our_broker "$p"; then
                echo "$p" >"$PID_FILE"
                echo "$p"
                return 0
            fi
        done
    fi
    return 1
}

port_owner_hint() { # PORT
    if command -v ss >/dev/null 2>&1; then
        ss -ltnpH "sport = :$1" 2>/dev/null | head -n 3 | sed 's/^/    /' >&2 || true
    fi
}

show_log_tail() {
    if [[ -s $SERVER_LOG ]]; then
        printf '%s: last lines of %s:\n' "$PROG" "$SERVER_LOG" >&2
        tail -n 40 "$SERVER_LOG" | sed 's/^/    /' >&2
    else
        printf '%s: %s is empty or missing\n' "$PROG" "$SERVER_LOG" >&2
    fi
}

# ------------------------------------------------------------------ broker setup

random_cluster_id() {
    # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding,
    # not starting with '-' (which the CLI would read as an option).
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ ${#id} -eq 22 && $id != -* && $id != AAAAAAAAAAAAAAAAAAAAA[AQ] ]] && break
    done
    echo "$id"
}

write_broker_configs() {
    cat >"$PROPS" <<EOF
# Generated by kafka.sh on every start; edits are overwritten.
# Single-node KRaft cluster: this process is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT

log.dirs=$DATA_DIR
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true

# Internal topics of a one-broker cluster must have replication factor 1.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Consumer groups start consuming at once instead of after 3 s.
group.initial.rebalance.delay.ms=0

# Modest thread counts for a small (2-core) machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
EOF
    cat >"$KAFKA_STATE_DIR/log4j2.properties" <<'EOF'
# Broker logging: everything goes to stdout, which kafka.sh sends to server.log.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = kafka.controller
logger.controller.level = INFO
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
EOF
}

wipe_state() {
    [[ -e $KAFKA_STATE_DIR ]] || return 0
    if [[ -f $KAFKA_STATE_DIR/$STATE_MARKER ]] || [[ -z $(ls -A "$KAFKA_STATE_DIR") ]]; then
        log "wiping $KAFKA_STATE_DIR"
        rm -rf "$KAFKA_STATE_DIR"
    else
        die "refusing to wipe $KAFKA_STATE_DIR: it is not empty and was not created by $PROG (check KAFKA_STATE_DIR)"
    fi
}

prepare_state() {
    mkdir -p "$KAFKA_STATE_DIR"
    if [[ ! -f $KAFKA_STATE_DIR/$STATE_MARKER ]] && [[ -n $(ls -A "$KAFKA_STATE_DIR") ]]; then
        die "KAFKA_STATE_DIR=$KAFKA_STATE_DIR is not empty and was not created by $PROG; choose another directory"
    fi
    echo "Kafka broker state managed by $PROG; safe to delete while the broker is stopped." \
        >"$KAFKA_STATE_DIR/$STATE_MARKER"
    write_broker_configs

    if [[ -f $KAFKA_STATE_DIR/kafka.version ]]; then
        local formatted_with
        formatted_with=$(<"$KAFKA_STATE_DIR/kafka.version")
        if [[ $formatted_with != "$KAFKA_VERSION" ]]; then
            STARTUP_HINT=" The state was created by Kafka $formatted_with: '$PROG start --fresh' starts over (deleting all topics)."
            log "warning: $KAFKA_STATE_DIR was created by Kafka $formatted_with, now running $KAFKA_VERSION."
            log "warning: if the broker fails to start, run '$PROG start --fresh' (this deletes all topics)."
        fi
    fi

    if [[ ! -f $DATA_DIR/meta.properties ]]; then
        local cluster_id=${KAFKA_CLUSTER_ID:-$(random_cluster_id)}
        log "formatting storage in $DATA_DIR (cluster id $cluster_id)"
        local out
        if ! out=$(run_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" 2>&1); then
            printf '%s\n' "$out" >&2
            die "formatting the Kafka storage failed; try '$PROG start --fresh'"
        fi
        echo "$KAFKA_VERSION" >"$KAFKA_STATE_DIR/kafka.version"
    fi
}

launch_broker() {
    [[ -f $SERVER_LOG ]] && mv -f "$SERVER_LOG" "$SERVER_LOG.1"
    local -a heap extra
    read -r -a heap <<<"$KAFKA_HEAP"
    read -r -a extra <<<"$KAFKA_JVM_OPTS"
    # setsid + nohup: the broker outlives this shell and its terminal.
    # fd 9 (our lock) must not be inherited, or the lock would be held forever.
    local -a detach=(nohup)
    command -v setsid >/dev/null 2>&1 && detach=(nohup setsid)
    "${detach[@]}" "$JAVA" "${heap[@]}" \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_STATE_DIR/log4j2.properties" \
        ${extra[@]+"${extra[@]}"} \
        -cp "$LIBS_DIR/*" kafka.Kafka "$PROPS" \
        >"$SERVER_LOG" 2>&1 </dev/null 9>&- &
    local pid=$! _
    echo "$pid" >"$PID_FILE"
    # Wait for the exec into java; if setsid had to fork, $! is not the JVM
    # and the real process is looked up by its config path.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        is_our_broker "$pid" && break
        sleep 0.2
    done
    is_our_broker "$pid" || pid=$(broker_pid) || pid=""
    LAUNCHED_PID=$pid
}

# Wait until the broker answers a metadata request; sets TOPIC_LIST.
wait_ready() { # DEADLINE(epoch seconds) PID-or-empty
    local deadline=$1 pid=$2 out=""
    while :; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            show_log_tail
            die "the Kafka broker exited during startup (see $SERVER_LOG).${STARTUP_HINT:-}"
        fi
        if port_open "$KAFKA_PORT"; then
            if out=$(TOOL_TIMEOUT=30 topic_cmd --list 2>&1); then
                TOPIC_LIST=$out
                return 0
            fi
        fi
        if (($(date +%s) >= deadline)); then
            [[ -n $out ]] && printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /' >&2
            show_log_tail
            die "the Kafka broker did not serve requests on $KAFKA_BOOTSTRAP within ${KAFKA_START_TIMEOUT}s (KAFKA_START_TIMEOUT); it is left running, see '$PROG logs' or '$PROG stop'"
        fi
        sleep 0.5
    done
}

ensure_default_topics() { # DEADLINE
    local deadline=$1 spec name parts out
    local -a specs
    read -r -a specs <<<"$KAFKA_DEFAULT_TOPICS"
    for spec in ${specs[@]+"${specs[@]}"}; do
        name=${spec%%:*}
        parts=${spec#*:}
        [[ $spec == *:* ]] || parts=3
        [[ $parts =~ ^[1-9][0-9]*$ ]] || die "KAFKA_DEFAULT_TOPICS entry '$spec' is not NAME:PARTITIONS"
        if grep -qxF -- "$name" <<<"$TOPIC_LIST"; then
            continue
        fi
        # Right after startup the broker may still be fenced; retry until the deadline.
        while ! out=$(TOOL_TIMEOUT=30 topic_cmd --create --if-not-exists --topic "$name" \
            --partitions "$parts" --replication-factor 1 2>&1); do
            if (($(date +%s) >= deadline)); then
                printf '%s\n' "$out" >&2
                die "could not create topic $name"
            fi
            sleep 1
        done
        log "created topic $name ($parts partitions)"
    done
}

# ---------------------------------------------------------------------- commands

cmd_start() {
    local arg
    for arg in "$@"; do
        case $arg in
        --fresh) KAFKA_FRESH=1 ;;
        *) die "unknown option for start: $arg" ;;
        esac
    done
    find_java
    ensure_dist
    lock "${KAFKA_STATE_DIR%/}.lock"

    local pid deadline
    if [[ $KAFKA_FRESH == 1 ]]; then
        if pid=$(broker_pid); then
            log "stopping the running broker (pid $pid) before wiping its state"
            stop_pid "$pid"
        fi
        wipe_state
    fi

    if pid=$(broker_pid); then
        deadline=$(($(date +%s) + KAFKA_START_TIMEOUT))
        wait_ready "$deadline" "$pid"
        ensure_default_topics "$deadline"
        echo "Kafka broker already running (pid $pid) on $KAFKA_BOOTSTRAP"
        return 0
    fi

    if port_open "$KAFKA_PORT"; then
        port_owner_hint "$KAFKA_PORT"
        die "port $KAFKA_PORT on 127.0.0.1 is in use by another process (not the broker of $KAFKA_STATE_DIR). Stop it, or choose another port with KAFKA_PORT=..."
    fi
    if port_open "$KAFKA_CONTROLLER_PORT"; then
        port_owner_hint "$KAFKA_CONTROLLER_PORT"
        die "controller port $KAFKA_CONTROLLER_PORT on 127.0.0.1 is in use by another process. Stop it, or set KAFKA_CONTROLLER_PORT=... (or another KAFKA_PORT)"
    fi

    local t0=$SECONDS
    prepare_state
    log "starting Kafka $KAFKA_VERSION on $KAFKA_BOOTSTRAP (log: $SERVER_LOG)"
    launch_broker
    deadline=$(($(date +%s) + KAFKA_START_TIMEOUT))
    wait_ready "$deadline" "$LAUNCHED_PID"
    ensure_default_topics "$deadline"
    echo "Kafka broker started (pid $LAUNCHED_PID) on $KAFKA_BOOTSTRAP in $((SECONDS - t0))s"
}

stop_pid() { # PID
    local pid=$1 waited=0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= KAFKA_STOP_TIMEOUT * 10)); then
            log "broker did not stop within ${KAFKA_STOP_TIMEOUT}s (KAFKA_STOP_TIMEOUT), sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$PID_FILE"
}

cmd_stop() {
    [[ -d $KAFKA_STATE_DIR ]] || {
        echo "Kafka broker not running (no state in $KAFKA_STATE_DIR)"
        return 0
    }
    lock "${KAFKA_STATE_DIR%/}.lock"
    local pid
    if ! pid=$(broker_pid); then
        rm -f "$PID_FILE"
        echo "Kafka broker not running"
        return 0
    fi
    local t0=$SECONDS
    stop_pid "$pid"
    echo "Kafka broker stopped (pid $pid) in $((SECONDS - t0))s"
}

cmd_status() {
    local pid
    echo "version:   Apache Kafka $KAFKA_VERSION"
    echo "jars:      $LIBS_DIR$([[ -f $KAFKA_DIST_DIR/.complete ]] || echo ' (not fetched yet)')"
    echo "state:     $KAFKA_STATE_DIR"
    echo "log:       $SERVER_LOG"
    if ! pid=$(broker_pid 2>/dev/null); then
        echo "broker:    stopped"
        if port_open "$KAFKA_PORT"; then
            echo "note:      port $KAFKA_PORT is in use by another process"
        fi
        return 3
    fi
    echo "pid:       $pid"
    echo "bootstrap: $KAFKA_BOOTSTRAP"
    find_java
    ensure_dist
    if port_open "$KAFKA_PORT" && TOOL_TIMEOUT=30 topic_cmd --list >/dev/null 2>&1; then
        echo "broker:    running and serving requests"
        return 0
    fi
    echo "broker:    running but not serving requests (starting up or unhealthy; see '$PROG logs')"
    return 1
}

need_tools() {
    find_java
    ensure_dist
}

cmd_create_topic() {
    [[ $# -eq 2 ]] || die "usage: $PROG create-topic NAME PARTITIONS"
    local name=$1 parts=$2 out
    [[ $parts =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive number, got '$parts'"
    need_tools
    out=$(topic_cmd --create --if-not-exists --topic "$name" --partitions "$parts" \
        --replication-factor 1 2>&1) || {
        printf '%s\n' "$out" >&2
        die "could not create topic $name on $KAFKA_BOOTSTRAP (is the broker running? '$PROG status')"
    }
    if [[ $out == *"Created topic"* ]]; then
        echo "created topic $name ($parts partitions)"
    else
        echo "topic $name already exists (partitions unchanged; see '$PROG describe $name')"
    fi
}

cmd_topics() {
    need_tools
    topic_cmd --list --exclude-internal ||
        die "could not list topics on $KAFKA_BOOTSTRAP (is the broker running? '$PROG status')"
}

cmd_describe() {
    need_tools
    local -a args=(--describe)
    [[ $# -gt 0 ]] && args+=(--topic "$1")
    topic_cmd "${args[@]}" ||
        die "could not describe topics on $KAFKA_BOOTSTRAP (is the broker running? '$PROG status')"
}

cmd_produce() {
    [[ $# -eq 1 ]] || die "usage: $PROG produce TOPIC   (messages on stdin, one per line)"
    need_tools
    run_tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$KAFKA_BOOTSTRAP" \
        --topic "$1" --producer-property acks=all
}

cmd_consume() {
    [[ $# -ge 1 && $# -le 3 ]] || die "usage: $PROG consume TOPIC [MAX_MESSAGES [TIMEOUT_MS]]"
    local max=${2:-10} ms=${3:-10000}
    if ! is_uint "$max" || ! is_uint "$ms"; then
        die "MAX_MESSAGES and TIMEOUT_MS must be numbers"
    fi
    need_tools
    # ConsoleConsumer reports reaching the timeout as an error and exits
    # non-zero; here that is the normal end, so drop that noise.
    local errors
    errors=$(mktemp)
    run_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$KAFKA_BOOTSTRAP" \
        --topic "$1" --from-beginning --max-messages "$max" --timeout-ms "$ms" 2>"$errors" || true
    grep -v -e 'terminating consumer process' -e '^org.apache.kafka.common.errors.TimeoutException' \
        "$errors" >&2 || true
    rm -f "$errors"
}

cmd_logs() {
    local lines=${1:-50}
    is_uint "$lines" || die "usage: $PROG logs [LINES]"
    [[ -f $SERVER_LOG ]] || die "no log yet at $SERVER_LOG"
    tail -n "$lines" "$SERVER_LOG"
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case $cmd in
    -h | --help | help | "")
        usage
        [[ -n $cmd ]] || exit 2
        return 0
        ;;
    esac
    check_settings
    case $cmd in
    start) cmd_start "$@" ;;
    --fresh) [[ ${1:-} == start ]] || die "usage: $PROG start --fresh"; shift; cmd_start --fresh "$@" ;;
    stop) cmd_stop ;;
    restart)
        cmd_stop
        exec 9>&-
        cmd_start "$@"
        ;;
    status) cmd_status ;;
    create-topic) cmd_create_topic "$@" ;;
    topics) cmd_topics ;;
    describe) cmd_describe "$@" ;;
    produce) cmd_produce "$@" ;;
    consume) cmd_consume "$@" ;;
    run-class)
        [[ $# -ge 1 ]] || die "usage: $PROG run-class CLASS [ARGS...]"
        need_tools
        run_tool "$@"
        ;;
    fetch)
        find_java
        ensure_dist
        echo "Kafka $KAFKA_VERSION jars in $LIBS_DIR"
        ;;
    classpath)
        ensure_dist
        echo "$LIBS_DIR/*"
        ;;
    logs) cmd_logs "$@" ;;
    *)
        usage >&2
        die "unknown command: $cmd"
        ;;
    esac
}

main "$@"
