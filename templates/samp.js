// samp.js — a small, dependency-free SAMP Web Profile client for wisecut.
//
// SAMP 1.3, Web Profile: a browser page talks XML-RPC (HTTP POST, text/xml)
// to the hub at the well-known address http://localhost:21012/ (the hub
// answers CORS preflights). Every hub method is named "samp.webhub." + the
// abstract-API name; register takes an identity map {"samp.name": ...} and
// returns {samp.private-key, samp.self-id, samp.hub-id, samp.url-translator};
// every other method takes the private key as its first argument.
// SAMP data are strings, lists and maps only (XML-RPC <string>, <array>,
// <struct>); numbers and booleans travel as strings. Hubs may still answer
// with <int>/<i4>/<boolean> (notably in a <fault>), so the decoder accepts
// those and turns them into strings.
//
// What a page gets:
//   <button type="button" class="samp-send" id="samp-table"
//           data-mtype="table.load.votable" data-url="/vo/table.xml"
//           data-name="SourceList 12" data-table-id="sl-12">Send to TOPCAT</button>
//   <span class="samp-status"></span>
// On click: register with the hub (once per page), find the clients that
// subscribe to the MType, send it to each with callAndWait and write e.g.
// "TOPCAT: OK; Aladin: OK" into the status element, then set its
// data-samp-result to "ok" or "error" (and data-samp-detail to a JSON list
// of per-client outcomes) so tests can wait for it.
// Scripts can call window.wisecutSamp.send(mtype, url, name[, id]), which
// resolves to {ok, text, results}.
(() => {
  "use strict";

  const HUB_URL = "http://localhost:21012/";
  const PREFIX = "samp.webhub.";
  const APP_NAME = "wisecut";
  // How long a recipient has to answer a callAndWait (seconds; sent as string).
  const CALL_TIMEOUT_S = 30;
  // Registration may show a consent dialog in the hub and wait for a human,
  // so it gets far longer than ordinary calls.
  const REGISTER_TIMEOUT_MS = 120000;
  const RPC_TIMEOUT_MS = 15000;
  const NO_HUB_TEXT = "No SAMP hub found: start TOPCAT or Aladin";

  // ---------------------------------------------------------------- errors

  // The hub could not be reached at all (connection refused, CORS failure).
  class NoHubError extends Error {}
  // The hub answered with an XML-RPC <fault>.
  class SampFault extends Error {
    constructor(code, text) {
      super(text || "XML-RPC fault " + code);
      this.code = code;
    }
  }

  // --------------------------------------------------------- XML-RPC codec

  const escapeXml = (s) =>
    String(s)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&apos;");

  // Encodes a SAMP value (string, list, map) as an XML-RPC <value>.
  function encodeValue(v) {
    if (Array.isArray(v)) {
      return "<value><array><data>" + v.map(encodeValue).join("") +
        "</data></array></value>";
    }
    if (v !== null && typeof v === "object") {
      let members = "";
      for (const [k, x] of Object.entries(v)) {
        if (x === undefined || x === null) continue; // SAMP has no null
        members += "<member><name>" + escapeXml(k) + "</name>" +
          encodeValue(x) + "</member>";
      }
      return "<value><struct>" + members + "</struct></value>";
    }
    if (typeof v === "boolean") v = v ? "1" : "0"; // SAMP boolean convention
    if (v === undefined || v === null) v = "";
    return "<value><string>" + escapeXml(String(v)) + "</string></value>";
  }

  function encodeCall(method, params) {
    return "<?xml version=\"1.0\"?>\n<methodCall><methodName>" +
      escapeXml(method) + "</methodName><params>" +
      params.map((p) => "<param>" + encodeValue(p) + "</param>").join("") +
      "</params></methodCall>";
  }

  const childElements = (el) =>
    Array.from(el.childNodes).filter((n) => n.nodeType === 1);

  // Decodes an XML-RPC <value> element into strings, arrays and objects.
  function decodeValue(valueEl) {
    const kids = childElements(valueEl);
    // <value>text</value> without a type element is a string in XML-RPC.
    if (kids.length === 0) return valueEl.textContent;
    const el = kids[0];
    switch (el.localName) {
      case "string":
      case "int":
      case "i4":
      case "i8":
      case "double":
      case "boolean":
      case "dateTime.iso8601":
      case "base64":
        return el.textContent;
      case "nil":
        return "";
      case "array": {
        const data = childElements(el).find((n) => n.localName === "data");
        if (!data) return [];
        return childElements(data)
          .filter((n) => n.localName === "value")
          .map(decodeValue);
      }
      case "struct": {
        const map = {};
        for (const m of childElements(el)) {
          if (m.localName !== "member") continue;
          const nameEl = childElements(m).find((n) => n.localName === "name");
          const valEl = childElements(m).find((n) => n.localName === "value");
          if (nameEl && valEl) map[nameEl.textContent] = decodeValue(valEl);
        }
        return map;
      }
      default:
        throw new Error("unexpected XML-RPC type <" + el.localName + ">");
    }
  }

  // Returns the single result of a <methodResponse>, or throws SampFault.
  function decodeResponse(text) {
    const doc = new DOMParser().parseFromString(text, "application/xml");
    if (doc.getElementsByTagName("parsererror").length) {
      throw new Error("hub sent malformed XML");
    }
    const root = doc.documentElement;
    if (!root || root.localName !== "methodResponse") {
      throw new Error("hub sent no XML-RPC methodResponse");
    }
    const body = childElements(root)[0];
    if (body && body.localName === "fault") {
      const v = childElements(body).find((n) => n.localName === "value");
      const f = v ? decodeValue(v) : {};
      throw new SampFault(f.faultCode, f.faultString);
    }
    if (body && body.localName === "params") {
      const param = childElements(body).find((n) => n.localName === "param");
      const v = param && childElements(param).find((n) => n.localName === "value");
      return v ? decodeValue(v) : "";
    }
    throw new Error("hub sent an empty XML-RPC response");
  }

  // One XML-RPC call to the hub. Network failures (hub not running, or not
  // answering CORS) become NoHubError so callers can say so plainly.
  async function rpc(method, params, timeoutMs = RPC_TIMEOUT_MS) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    let resp;
    try {
      resp = await fetch(HUB_URL, {
        method: "POST",
        headers: { "Content-Type": "text/xml" },
        body: encodeCall(PREFIX + method, params),
        signal: ctl.signal,
        cache: "no-store",
        credentials: "omit",
      });
    } catch (e) {
      if (e.name === "AbortError") {
        throw new Error("SAMP hub did not answer " + method + " in " +
          Math.round(timeoutMs / 1000) + " s");
      }
      throw new NoHubError(NO_HUB_TEXT);
    } finally {
      clearTimeout(timer);
    }
    if (!resp.ok) throw new Error("SAMP hub HTTP " + resp.status + " on " + method);
    return decodeResponse(await resp.text());
  }

  // ------------------------------------------------------------ connection

  let conn = null; // {key, selfId, hubId, translator}
  let registering = null; // promise while a registration is in flight

  async function register() {
    const info = await rpc("register", [{ "samp.name": APP_NAME }], REGISTER_TIMEOUT_MS);
    if (!info || typeof info["samp.private-key"] !== "string") {
      throw new Error("SAMP hub sent no private key");
    }
    const c = {
      key: info["samp.private-key"],
      selfId: info["samp.self-id"],
      hubId: info["samp.hub-id"],
      translator: info["samp.url-translator"] || "",
    };
    // Metadata is a courtesy to the other clients; failure is not fatal.
    try {
      await rpc("declareMetadata", [c.key, {
        "samp.name": APP_NAME,
        "samp.description.text": "wisecut survey image database and cutout server",
        "samp.documentation.url": new URL("/help", location.href).href,
        "author.name": "wisecut",
      }]);
    } catch (e) {
      console.warn("samp: declareMetadata failed", e);
    }
    return c;
  }

  // Registers once per page; concurrent clicks share one registration.
  async function connection(fresh = false) {
    if (fresh) conn = null;
    if (conn) return conn;
    if (!registering) {
      registering = register().then(
        (c) => { conn = c; registering = null; return c; },
        (e) => { registering = null; throw e; },
      );
    }
    return registering;
  }

  // A hub call with the private key; if the hub forgot us (it restarted or
  // timed us out) register again once and retry. Only faults that blame the
  // key are retried: a callAndWait that timed out must not be sent twice.
  const STALE_KEY = /private[- ]?key|not registered|unknown (client|caller)|no such client|unregistered/i;
  async function hubCall(method, args, timeoutMs) {
    let c = await connection();
    try {
      return await rpc(method, [c.key, ...args], timeoutMs);
    } catch (e) {
      if (!(e instanceof SampFault) || !STALE_KEY.test(e.message)) throw e;
      c = await connection(true);
      return rpc(method, [c.key, ...args], timeoutMs);
    }
  }

  // Best-effort unregistration when the page goes away, so the hub's client
  // list does not fill up with dead browser tabs.
  window.addEventListener("pagehide", () => {
    if (!conn) return;
    try {
      fetch(HUB_URL, {
        method: "POST",
        headers: { "Content-Type": "text/xml" },
        body: encodeCall(PREFIX + "unregister", [conn.key]),
        keepalive: true,
      }).catch(() => {});
    } catch (e) { /* page is going anyway */ }
    conn = null;
  });

  // ------------------------------------------------------------- messaging

  const PARAMS_ID_KEY = {
    "table.load.votable": "table-id",
    "table.load.fits": "table-id",
    "image.load.fits": "image-id",
  };

  // Describes one recipient's reply to callAndWait.
  function describeResponse(resp) {
    const status = (resp && resp["samp.status"]) || "";
    const err = resp && resp["samp.error"];
    const errText = (err && (err["samp.errortxt"] || err["samp.debugtxt"])) || "";
    if (status === "samp.ok") return { status, text: "OK" };
    if (status === "samp.warning") {
      return { status, text: "warning" + (errText ? ": " + errText : "") };
    }
    if (status === "samp.error") {
      return { status, text: "error" + (errText ? ": " + errText : "") };
    }
    return { status: status || "none", text: "unexpected reply" };
  }

  // Sends one message to every client subscribed to its MType.
  // Resolves to {ok, text, results: [{id, name, status, text}]}; ok is true
  // when at least one client accepted it (samp.ok or samp.warning).
  async function send(mtype, url, name, id) {
    const absUrl = new URL(url, location.href).href;
    const params = { url: absUrl };
    if (name) params.name = name;
    if (id && PARAMS_ID_KEY[mtype]) params[PARAMS_ID_KEY[mtype]] = id;
    const message = { "samp.mtype": mtype, "samp.params": params };

    let subscribed;
    try {
      subscribed = await hubCall("getSubscribedClients", [mtype]);
    } catch (e) {
      return { ok: false, text: errorText(e), results: [] };
    }
    const self = conn && conn.selfId;
    const ids = Object.keys(subscribed || {}).filter((c) => c !== self);
    if (ids.length === 0) {
      return {
        ok: false,
        text: "No SAMP client accepts " + mtype + ": start TOPCAT or Aladin",
        results: [],
      };
    }

    const results = await Promise.all(ids.map(async (cid) => {
      let cname = cid;
      try {
        const meta = await hubCall("getMetadata", [cid]);
        if (meta && meta["samp.name"]) cname = meta["samp.name"];
      } catch (e) { /* keep the id as the name */ }
      try {
        const resp = await hubCall("callAndWait", [cid, message, String(CALL_TIMEOUT_S)],
          (CALL_TIMEOUT_S + 10) * 1000);
        return { id: cid, name: cname, ...describeResponse(resp) };
      } catch (e) {
        return { id: cid, name: cname, status: "failed", text: "failed: " + errorText(e) };
      }
    }));
    const ok = results.some((r) => r.status === "samp.ok" || r.status === "samp.warning");
    return { ok, text: results.map((r) => r.name + ": " + r.text).join("; "), results };
  }

  function errorText(e) {
    if (e instanceof NoHubError) return NO_HUB_TEXT;
    if (e instanceof SampFault) return "SAMP hub refused: " + e.message;
    return e && e.message ? e.message : String(e);
  }

  // ------------------------------------------------------------ page wiring

  // The status element for a button: an explicit [data-samp-status-for=id],
  // else the next .samp-status sibling, else one inside the parent, else a
  // new <span class="samp-status"> right after the button.
  function statusFor(btn) {
    if (btn.id) {
      const el = document.querySelector(
        "[data-samp-status-for=\"" + CSS.escape(btn.id) + "\"]");
      if (el) return el;
    }
    for (let n = btn.nextElementSibling; n; n = n.nextElementSibling) {
      if (n.classList.contains("samp-status")) return n;
    }
    const inParent = btn.parentElement && btn.parentElement.querySelector(".samp-status");
    if (inParent) return inParent;
    const span = document.createElement("span");
    span.className = "samp-status";
    btn.after(" ", span);
    return span;
  }

  async function onClick(ev) {
    const btn = ev.currentTarget;
    const status = statusFor(btn);
    status.setAttribute("role", "status");
    status.removeAttribute("data-samp-result");
    status.removeAttribute("data-samp-detail");
    status.textContent = "Sending via SAMP…";
    btn.disabled = true;
    // First contact makes the hub ask its user (TOPCAT/Aladin show a dialog);
    // say so if registration takes a while.
    const hint = setTimeout(() => {
      if (registering) {
        status.textContent = "Waiting for the SAMP hub to accept \u201c" + APP_NAME +
          "\u201d: answer the dialog in TOPCAT or Aladin…";
      }
    }, 1500);
    let res;
    try {
      res = await send(btn.dataset.mtype, btn.dataset.url, btn.dataset.name,
        btn.dataset.tableId || btn.dataset.imageId);
    } catch (e) {
      res = { ok: false, text: errorText(e), results: [] };
    } finally {
      clearTimeout(hint);
      btn.disabled = false;
    }
    status.textContent = res.text;
    status.dataset.sampDetail = JSON.stringify(res.results);
    status.dataset.sampResult = res.ok ? "ok" : "error";
  }

  function wire() {
    for (const btn of document.querySelectorAll("button.samp-send")) {
      if (btn.dataset.sampWired) continue;
      btn.dataset.sampWired = "1";
      btn.addEventListener("click", onClick);
    }
  }

  window.wisecutSamp = { send, wire };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wire);
  } else {
    wire();
  }
})();
