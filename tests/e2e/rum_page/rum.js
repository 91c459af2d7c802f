// Real-user monitoring for the browser test page, as a shop would ship it: the official
// OpenTelemetry JS web SDK with the document-load and fetch instrumentations, exporting OTLP/JSON
// straight to `otel-impact serve` (cross-origin, so the receiver's CORS must allow this page).
//
// Who the visitor is comes from the <meta> tags the server rendered with
// otel_impact.browser_identity(): the customer's pseudonym and tier, never the raw ID. Every span
// carries them. JS errors thrown before the page finished loading are recorded as exception
// events on the page-load span, which then has status error: a failed page_load event.
//
// Built by `npm run build` (esbuild) into rum.bundle.js; the test page loads it in <head>.
import { SpanStatusCode } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { DocumentLoadInstrumentation } from "@opentelemetry/instrumentation-document-load";
import { FetchInstrumentation } from "@opentelemetry/instrumentation-fetch";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, WebTracerProvider } from "@opentelemetry/sdk-trace-web";

const IDENTITY_KEYS = ["impact.customer.hash", "impact.customer.tier"];

function meta(name) {
  const element = document.querySelector(`meta[name="${name}"]`);
  return element ? element.content : undefined;
}

const identity = {};
for (const key of IDENTITY_KEYS) {
  const value = meta(key);
  if (value) identity[key] = value;
}

// Errors until the page-load span ends belong to the page load.
const errors = [];
window.addEventListener("error", (event) => {
  errors.push(event.error instanceof Error ? event.error : new Error(String(event.message)));
});
window.addEventListener("unhandledrejection", (event) => {
  errors.push(event.reason instanceof Error ? event.reason : new Error(String(event.reason)));
});

// Stamps the visitor's pseudonym and tier on every span, as the Python SDK does on the server.
// (It also notes the names of ended spans, for the test to know when to flush.)
class IdentitySpanProcessor {
  onStart(span) {
    span.setAttributes(identity);
  }
  onEnd(span) {
    ended.push(span.name);
  }
  forceFlush() {
    return Promise.resolve();
  }
  shutdown() {
    return Promise.resolve();
  }
}

// The test reads the outcome of each export (0: success, 1: failed) from window.rum.results.
const results = [];
const ended = [];
const otlp = new OTLPTraceExporter({ url: meta("otlp-traces-url") });
const exporter = {
  export(spans, done) {
    otlp.export(spans, (result) => {
      results.push(result.code);
      done(result);
    });
  },
  forceFlush: () => otlp.forceFlush(),
  shutdown: () => otlp.shutdown(),
};

const provider = new WebTracerProvider({
  resource: resourceFromAttributes({ "service.name": "shop-web" }),
  spanProcessors: [new IdentitySpanProcessor(), new BatchSpanProcessor(exporter, { scheduledDelayMillis: 100 })],
});
provider.register();

const state = { results, ended, flush: () => provider.forceFlush() };
window.rum = state;

registerInstrumentations({
  instrumentations: [
    new DocumentLoadInstrumentation({
      applyCustomAttributesOnSpan: {
        documentLoad: (span) => {
          for (const error of errors) span.recordException(error);
          if (errors.length > 0) span.setStatus({ code: SpanStatusCode.ERROR, message: errors[0].message });
        },
      },
    }),
    new FetchInstrumentation(),
  ],
});
