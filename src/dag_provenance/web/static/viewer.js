// dag-provenance viewer: payloads on demand, a live list, a live run page.
// Loaded from the viewer itself (CSP: script-src 'self'); it never builds
// markup from data: recorded text goes in through textContent only, and the
// fragments it swaps in are the server's own escaped HTML.
(function () {
  "use strict";

  const LIST_ACTIVE_MS = 2000;
  const LIST_IDLE_MS = 10000;

  function element(tag, className, text) {
    const made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined) made.textContent = text;
    return made;
  }

  function number(n) {
    return n.toLocaleString("en");
  }

  async function fetchText(url) {
    const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(response.status + " " + response.statusText);
    return response.text();
  }

  function parse(html) {
    return new DOMParser().parseFromString(html, "text/html");
  }

  // --- inputs and outputs, on demand -------------------------------------

  function payloadBlock(name, payload, details) {
    const block = element("div", "payload");
    block.append(element("h4", "", name));
    if (payload.text === null) {
      block.append(element("p", "note muted", "nothing recorded"));
      return block;
    }
    block.append(element("pre", payload.is_json ? "json" : "text", payload.text));
    if (payload.truncated) {
      const cut = element("p", "cut muted",
        "showing the first " + number(payload.text.length) + " of " + number(payload.chars) + " characters");
      const all = element("button", "show-all", "show all");
      all.type = "button";
      all.addEventListener("click", function () { loadIo(details, true); });
      cut.append(all);
      block.append(cut);
    }
    return block;
  }

  async function loadIo(details, full) {
    const body = details.querySelector(".io-body");
    const url = new URL(details.dataset.io, window.location.href);
    if (full) url.searchParams.set("full", "1");
    body.replaceChildren(element("p", "note muted", "loading…"));
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.detail || response.statusText);
      body.replaceChildren(payloadBlock("input", answer.input, details),
                           payloadBlock("output", answer.output, details));
      details.dataset.loaded = "yes";
    } catch (error) {
      body.replaceChildren(element("p", "note error", "could not load: " + error.message));
    }
  }

  document.addEventListener("toggle", function (event) {
    const details = event.target;
    if (details instanceof HTMLDetailsElement && details.classList.contains("io")
        && details.open && !details.dataset.loaded) {
      loadIo(details, false);
    }
  }, true);

  // --- the list: rows kept up to date -------------------------------------

  function followList(list) {
    let timer = null;

    function delay() {
      if (list.querySelector("tr.run-row.active")) return LIST_ACTIVE_MS;
      return list.dataset.firstPage === "yes" ? LIST_IDLE_MS : null;
    }

    function schedule() {
      clearTimeout(timer);
      const wait = delay();
      if (wait !== null && !document.hidden) timer = setTimeout(refresh, wait);
    }

    function merge(fresh) {
      const body = list.querySelector("tbody");
      const freshBody = fresh.querySelector("tbody");
      if (!body || !freshBody) {
        list.replaceChildren(...fresh.body.childNodes);
        return;
      }
      const shown = new Map();
      for (const row of body.rows) shown.set(row.dataset.runId, row);
      const rows = [];
      for (const row of freshBody.rows) {
        const old = shown.get(row.dataset.runId);
        rows.push(old && old.outerHTML === row.outerHTML ? old : document.adoptNode(row));
      }
      body.replaceChildren(...rows);
      const pager = list.querySelector("nav.pager");
      const freshPager = fresh.querySelector("nav.pager");
      if (pager && freshPager) pager.replaceWith(document.adoptNode(freshPager));
    }

    async function refresh() {
      try {
        merge(parse(await fetchText(list.dataset.live)));
      } catch (error) {
        // Try again at the next tick: the server may be restarting.
      }
      schedule();
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) refresh();
      else clearTimeout(timer);
    });
    schedule();
  }

  // --- one run: followed with server-sent events --------------------------

  function followRun(live) {
    let version = live.dataset.version;
    let busy = false;
    let again = false;
    const graph = document.getElementById("run-graph");

    function keepOpenIo(fresh) {
      const open = new Map();
      for (const details of live.querySelectorAll("details.io[open]")) {
        open.set(details.dataset.io, details);
      }
      for (const details of fresh.querySelectorAll("details.io")) {
        const before = open.get(details.dataset.io);
        if (before) details.replaceWith(before);
      }
    }

    async function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      try {
        const fresh = parse(await fetchText(live.dataset.fragment)).querySelector(".live-body");
        if (fresh) {
          keepOpenIo(fresh);
          live.replaceChildren(document.adoptNode(fresh));
          version = fresh.dataset.version;
          if (graph) {
            const url = new URL(graph.dataset.src, window.location.href);
            url.searchParams.set("v", version);
            graph.src = url.toString();
          }
        }
      } catch (error) {
        // The next event brings another chance.
      } finally {
        busy = false;
        if (again) { again = false; refresh(); }
      }
    }

    const events = new EventSource(live.dataset.events);
    events.addEventListener("state", function (event) {
      if (JSON.parse(event.data).version !== version) refresh();
    });
    events.addEventListener("end", function (event) {
      events.close();
      const state = JSON.parse(event.data);
      if (state.status === null) {
        live.prepend(element("p", "failure", "This run has been deleted."));
      } else if (state.version !== version) {
        refresh();
      }
    });
    events.addEventListener("error", function (event) {
      if (event.data) events.close();  // the server's own error event: it has given up
    });
  }

  function start() {
    const list = document.getElementById("run-list");
    if (list && list.dataset.live) followList(list);
    const live = document.getElementById("run-live");
    if (live && live.dataset.events) followRun(live);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
