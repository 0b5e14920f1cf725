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
#
# Layout (one file per job under infra/kafka/, sourced in this order):
#   lib.sh     settings and paths, messages, the state lock, Java lookup,
#              the runner for Kafka's Java classes
#   fetch.sh   the Kafka jars from Maven Central (fetch, classpath)
#   state.sh   the broker's state directory: configs, storage format, wipe
#   topics.sh  create-topic, topics, describe, produce, consume
#   broker.sh  start, stop, restart, status, logs
# This file only parses the command line and dispatches.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

# The parts live next to the real file, also when this one is called through a symlink.
KAFKA_SH_PARTS=${BASH_SOURCE[0]}
while [[ -L $KAFKA_SH_PARTS ]]; do
    link=$(readlink "$KAFKA_SH_PARTS")
    [[ $link == /* ]] || link=$(dirname "$KAFKA_SH_PARTS")/$link
    KAFKA_SH_PARTS=$link
done
KAFKA_SH_PARTS=$(dirname "$KAFKA_SH_PARTS")/kafka
# shellcheck source=kafka/lib.sh
. "$KAFKA_SH_PARTS/lib.sh"
# shellcheck source=kafka/fetch.sh
. "$KAFKA_SH_PARTS/fetch.sh"
# shellcheck source=kafka/state.sh
. "$KAFKA_SH_PARTS/state.sh"
# shellcheck source=kafka/topics.sh
. "$KAFKA_SH_PARTS/topics.sh"
# shellcheck source=kafka/broker.sh
. "$KAFKA_SH_PARTS/broker.sh"

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
        unlock
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
        need_tools
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
