// A client instrumented with the OpenTelemetry JS SDK: it starts a span,
// injects its context as a W3C traceparent into an inference request to
// rouse, and prints its own trace and span ids with rouse's answer, so that
// the test can check that rouse's request span became a child of it.
//
//   node client.js URL BODY.json
"use strict";
const fs = require("fs");
const api = require("@opentelemetry/api");
const { W3CTraceContextPropagator } = require("@opentelemetry/core");
const { NodeTracerProvider } = require("@opentelemetry/sdk-trace-node");
const { InMemorySpanExporter, SimpleSpanProcessor } = require("@opentelemetry/sdk-trace-base");

const [url, bodyFile] = process.argv.slice(2);
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider();
provider.addSpanProcessor(new SimpleSpanProcessor(exporter));
provider.register({ propagator: new W3CTraceContextPropagator() });
const tracer = api.trace.getTracer("rouse-test-client");

tracer.startActiveSpan("client-infer", async (span) => {
    const headers = { "Content-Type": "application/json" };
    api.propagation.inject(api.context.active(), headers);
    const res = await fetch(url, { method: "POST", headers, body: fs.readFileSync(bodyFile) });
    await res.arrayBuffer();
    span.end();
    const ctx = exporter.getFinishedSpans()[0].spanContext();
    console.log(JSON.stringify({
        traceId: ctx.traceId,
        spanId: ctx.spanId,
        sent: headers.traceparent,
        status: res.status,
        traceresponse: res.headers.get("traceresponse"),
    }));
});
