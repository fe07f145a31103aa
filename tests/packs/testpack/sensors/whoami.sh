#!/bin/sh
# Ask for init on fd 3 (the container's answer holds the config), then
# write what this process is and can do to <out_dir>/whoami.txt.
printf '{"jsonrpc":"2.0","id":1,"method":"init","params":{}}\n' >&3
IFS= read -r line <&3
out=$(printf '%s' "$line" | sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p')
{
  echo "uid=$(id -u)"
  echo "gid=$(id -g)"
  echo "groups=$(id -G)"
  if ls "$out/../data/db" >/dev/null 2>&1; then echo "db=readable"; else echo "db=denied"; fi
  if cat "$out/../data/db/conf" >/dev/null 2>&1; then echo "conf=readable"; else echo "conf=denied"; fi
  echo "nofile=$(ulimit -n)"
} > "$out/whoami.tmp"
mv "$out/whoami.tmp" "$out/whoami.txt"
exec sleep 60
