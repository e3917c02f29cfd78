// The OTLP collector of bench/gateway.sh's overhead run: takes every POST
// (its body read and discarded) and answers 200, doing as little as a
// collector can, so that the run measures rouse's export and not a
// collector's work. Prints "listening on 127.0.0.1:PORT" first.
"use strict";
const http = require("http");

const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on("data", (chunk) => { bytes += chunk.length; });
    req.on("end", () => {
        res.writeHead(req.method === "POST" && bytes > 0 ? 200 : 400,
                      { "Content-Type": "application/json", "Content-Length": 2 });
        res.end("{}");
    });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => {
    console.log(`listening on 127.0.0.1:${server.address().port}`);
});
