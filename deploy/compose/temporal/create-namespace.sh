#!/bin/sh
# Waits for the Temporal frontend, then creates the namespace jobservice uses unless it exists.
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS names the Temporal frontend}"
NAMESPACE="${NAMESPACE:-default}"
RETENTION="${RETENTION:-72h}"

attempt=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS"; do
    attempt=$((attempt + 1))
    if [ "$attempt" -ge 60 ]; then
        echo "Temporal at $TEMPORAL_ADDRESS is not healthy after $attempt tries" >&2
        exit 1
    fi
    sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" \
    --address "$TEMPORAL_ADDRESS" > /dev/null 2>&1; then
    echo "namespace $NAMESPACE exists"
else
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" \
        --address "$TEMPORAL_ADDRESS"
    echo "namespace $NAMESPACE created"
fi
