# shellcheck shell=bash
# broker.sh - the broker process: start (launch, wait until it serves
# requests), stop, status and logs. A broker belongs to this state directory if
# its command line runs kafka.Kafka with $PROPS; the pid file is only a hint,
# so a stale or missing one never makes us signal another process. Start, stop
# and --fresh hold the state lock. Sourced by infra/kafka.sh after lib.sh,
# fetch.sh, state.sh and topics.sh.

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

# Fail with MESSAGE (and the listening process, if ss can tell) when PORT is taken.
refuse_taken_port() { # PORT MESSAGE
    port_open "$1" || return 0
    if command -v ss >/dev/null 2>&1; then
        ss -ltnpH "sport = :$1" 2>/dev/null | head -n 3 | sed 's/^/    /' >&2 || true
    fi
    die "$2"
}

show_log_tail() {
    if [[ -s $SERVER_LOG ]]; then
        printf '%s: last lines of %s:\n' "$PROG" "$SERVER_LOG" >&2
        tail -n 40 "$SERVER_LOG" | sed 's/^/    /' >&2
    else
        printf '%s: %s is empty or missing\n' "$PROG" "$SERVER_LOG" >&2
    fi
}

# Start the JVM in the background; sets LAUNCHED_PID (empty if it is not found).
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

# Wait up to KAFKA_START_TIMEOUT until the broker answers a metadata request
# (sets TOPIC_LIST), then ensure the default topics within the same time.
await_serving() { # PID-or-empty
    local pid=$1 out="" deadline
    deadline=$(($(date +%s) + KAFKA_START_TIMEOUT))
    while :; do
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            show_log_tail
            die "the Kafka broker exited during startup (see $SERVER_LOG).${STARTUP_HINT:-}"
        fi
        if port_open "$KAFKA_PORT" && out=$(probe_topics 2>&1); then
            # shellcheck disable=SC2034 # (read by ensure_default_topics)
            TOPIC_LIST=$out
            break
        fi
        if (($(date +%s) >= deadline)); then
            [[ -n $out ]] && printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /' >&2
            show_log_tail
            die "the Kafka broker did not serve requests on $KAFKA_BOOTSTRAP within ${KAFKA_START_TIMEOUT}s (KAFKA_START_TIMEOUT); it is left running, see '$PROG logs' or '$PROG stop'"
        fi
        sleep 0.5
    done
    ensure_default_topics "$deadline"
}

cmd_start() {
    local arg
    for arg in "$@"; do
        case $arg in
        --fresh) KAFKA_FRESH=1 ;;
        *) die "unknown option for start: $arg" ;;
        esac
    done
    need_tools
    lock_state

    local pid
    if [[ $KAFKA_FRESH == 1 ]]; then
        if pid=$(broker_pid); then
            log "stopping the running broker (pid $pid) before wiping its state"
            stop_pid "$pid"
        fi
        wipe_state
    fi

    if pid=$(broker_pid); then
        await_serving "$pid"
        echo "Kafka broker already running (pid $pid) on $KAFKA_BOOTSTRAP"
        return 0
    fi

    refuse_taken_port "$KAFKA_PORT" "port $KAFKA_PORT on 127.0.0.1 is in use by another process (not the broker of $KAFKA_STATE_DIR). Stop it, or choose another port with KAFKA_PORT=..."
    refuse_taken_port "$KAFKA_CONTROLLER_PORT" "controller port $KAFKA_CONTROLLER_PORT on 127.0.0.1 is in use by another process. Stop it, or set KAFKA_CONTROLLER_PORT=... (or another KAFKA_PORT)"

    local t0=$SECONDS
    prepare_state
    log "starting Kafka $KAFKA_VERSION on $KAFKA_BOOTSTRAP (log: $SERVER_LOG)"
    launch_broker
    await_serving "$LAUNCHED_PID"
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
    lock_state
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

# Exit status: 0 running and serving, 1 running but not serving, 3 stopped.
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
    need_tools
    if port_open "$KAFKA_PORT" && probe_topics >/dev/null 2>&1; then
        echo "broker:    running and serving requests"
        return 0
    fi
    echo "broker:    running but not serving requests (starting up or unhealthy; see '$PROG logs')"
    return 1
}

cmd_logs() {
    local lines=${1:-50}
    is_uint "$lines" || die "usage: $PROG logs [LINES]"
    [[ -f $SERVER_LOG ]] || die "no log yet at $SERVER_LOG"
    tail -n "$lines" "$SERVER_LOG"
}
