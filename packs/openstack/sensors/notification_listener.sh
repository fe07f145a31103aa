#!/bin/sh
# Entry point of openstack.NotificationListener (runner_type: exec): runs the compiled
# sensor from packs/openstack/listener.
#
# Looks in ${RUST_SENSOR_TARGET_DIR:-<repo>/target}/<profile>/ for
# openstack-notification-listener, trying the profiles in ${RUST_SENSOR_PROFILE:-release debug}.
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 1
repo=$(CDPATH='' cd -- "$here/../../.." && pwd) || exit 1
target=${RUST_SENSOR_TARGET_DIR:-$repo/target}
looked=
for profile in ${RUST_SENSOR_PROFILE:-release debug}; do
    bin=$target/$profile/openstack-notification-listener
    if [ -x "$bin" ]; then
        exec "$bin" "$@"
    fi
    looked="$looked $bin"
done
echo "openstack.NotificationListener: the sensor is not built (looked for:$looked);" \
     "build it with \`cargo build -p openstack-notification-listener\` (or with --release)" >&2
exit 1
