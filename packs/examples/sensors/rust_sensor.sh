#!/bin/sh
# Entry point of examples.RustSensor (runner_type: exec): runs the compiled
# sensor from packs/examples/rust_sensor.
#
# Looks in ${RUST_SENSOR_TARGET_DIR:-<repo>/target}/<profile>/ for
# examples-rust-sensor, trying the profiles in ${RUST_SENSOR_PROFILE:-release debug}.
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || exit 1
repo=$(CDPATH='' cd -- "$here/../../.." && pwd) || exit 1
target=${RUST_SENSOR_TARGET_DIR:-$repo/target}
looked=
for profile in ${RUST_SENSOR_PROFILE:-release debug}; do
    bin=$target/$profile/examples-rust-sensor
    if [ -x "$bin" ]; then
        exec "$bin" "$@"
    fi
    looked="$looked $bin"
done
echo "examples.RustSensor: the sensor is not built (looked for:$looked);" \
     "build it with \`cargo build -p examples-rust-sensor\` (or with --release)" >&2
exit 1
