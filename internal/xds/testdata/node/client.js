// A Node gRPC client of xds:///TARGET through the xDS server the bootstrap
// names (GRPC_XDS_BOOTSTRAP): it calls Greet without pause and prints one
// line per RPC, "ok <instance>" or "err <message>", until stdin closes.
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
require('@grpc/grpc-js-xds').register();

const [target, protoFile] = process.argv.slice(2);
const def = protoLoader.loadSync(protoFile, { keepCase: true });
const greeter = grpc.loadPackageDefinition(def).greeter.v1;
const client = new greeter.GreeterService(target, grpc.credentials.createInsecure());

let stopping = false;
process.stdin.on('end', () => { stopping = true; });
process.stdin.resume();

function call() {
  if (stopping) {
    client.close();
    return;
  }
  const deadline = new Date(Date.now() + 10000);
  client.Greet({ name: 'node' }, { deadline }, (err, resp) => {
    process.stdout.write(err ? `err ${err.code} ${err.details}\n` : `ok ${resp.instance}\n`);
    setImmediate(call);
  });
}
call();
