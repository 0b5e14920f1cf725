# shellcheck shell=bash
# topics.sh - the topic tools (create-topic, topics, describe, produce,
# consume) over Kafka's own CLI classes, the readiness probe and the default
# topics that `start` ensures. Every topic is created with replication factor 1
# (a one-broker cluster) and only if it does not exist yet. Sourced by
# infra/kafka.sh after lib.sh.

is_partitions() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

topic_cmd() {
    run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
        --command-config "$CONF_DIR/admin.properties" "$@"
}

create_topic() { # NAME PARTITIONS
    topic_cmd --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor 1
}

# The readiness probe of start and status: list the topics within 30 s.
probe_topics() { TOOL_TIMEOUT=30 topic_cmd --list; }

die_unreachable() { # WHAT (failed against the broker)
    die "could not $1 on $KAFKA_BOOTSTRAP (is the broker running? '$PROG status')"
}

# Create the missing topics of $KAFKA_DEFAULT_TOPICS; TOPIC_LIST holds the
# topics that exist (from the probe).
ensure_default_topics() { # DEADLINE(epoch seconds)
    local deadline=$1 spec name parts out
    local -a specs
    read -r -a specs <<<"$KAFKA_DEFAULT_TOPICS"
    for spec in ${specs[@]+"${specs[@]}"}; do
        name=${spec%%:*}
        parts=${spec#*:}
        [[ $spec == *:* ]] || parts=3
        is_partitions "$parts" || die "KAFKA_DEFAULT_TOPICS entry '$spec' is not NAME:PARTITIONS"
        if grep -qxF -- "$name" <<<"$TOPIC_LIST"; then
            continue
        fi
        # Right after startup the broker may still be fenced; retry until the deadline.
        while ! out=$(TOOL_TIMEOUT=30 create_topic "$name" "$parts" 2>&1); do
            if (($(date +%s) >= deadline)); then
                printf '%s\n' "$out" >&2
                die "could not create topic $name"
            fi
            sleep 1
        done
        log "created topic $name ($parts partitions)"
    done
}

cmd_create_topic() {
    [[ $# -eq 2 ]] || die "usage: $PROG create-topic NAME PARTITIONS"
    local name=$1 parts=$2 out
    is_partitions "$parts" || die "PARTITIONS must be a positive number, got '$parts'"
    need_tools
    out=$(create_topic "$name" "$parts" 2>&1) || {
        printf '%s\n' "$out" >&2
        die_unreachable "create topic $name"
    }
    if [[ $out == *"Created topic"* ]]; then
        echo "created topic $name ($parts partitions)"
    else
        echo "topic $name already exists (partitions unchanged; see '$PROG describe $name')"
    fi
}

cmd_topics() {
    need_tools
    topic_cmd --list --exclude-internal || die_unreachable "list topics"
}

cmd_describe() {
    need_tools
    local -a args=(--describe)
    [[ $# -gt 0 ]] && args+=(--topic "$1")
    topic_cmd "${args[@]}" || die_unreachable "describe topics"
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
