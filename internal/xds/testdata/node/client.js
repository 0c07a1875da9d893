// A Node gRPC client of xds:///TARGET through the xDS server the bootstrap
// names (GRPC_XDS_BOOTSTRAP): it calls Greet without pause and prints one
// line per RPC, "ok <instance> <key>" or "err <message>", until stdin
// closes. With a HEADER argument, RPC i sends HEADER: user-(i mod 60),
// the key a ring_hash policy hashes.
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
require('@grpc/grpc-js-xds').register();

const [target, protoFile, header] = process.argv.slice(2);
const def = protoLoader.loadSync(protoFile, { keepCase: true });
const greeter = grpc.loadPackageDefinition(def).greeter.v1;
const client = new greeter.GreeterService(target, grpc.credentials.createInsecure());

let stopping = false;
process.stdin.on('end', () => { stopping = true; });
process.stdin.resume();

let i = 0;
function call() {
  if (stopping) {
    client.close();
    return;
  }
  const md = new grpc.Metadata();
  const key = header ? `user-${i++ % 60}` : '-';
  if (header) {
    md.set(header, key);
  }
  const deadline = new Date(Date.now() + 10000);
  client.Greet({ name: 'node' }, md, { deadline }, (err, resp) => {
    process.stdout.write(err ? `err ${err.code} ${err.details}\n` : `ok ${resp.instance} ${key}\n`);
    setImmediate(call);
  });
}
call();
