#!/bin/sh
# rackboot runs on the Node.js 20 the package carries (Debian 12's nodejs is 18).
exec /usr/lib/rackboot/node /usr/lib/rackboot/dist/server/cli.js "$@"
