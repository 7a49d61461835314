// Login page: user name + password → POST /api/auth/login → session token in sessionStorage → back to the
// page that sent us here (`?next=`, same-origin paths only). A one-time link (`/#login=…`) is handled by the
// pages themselves (common.js); if it was already used they send the user here.
(function () {
  const form = document.getElementById("login");
  const err = document.getElementById("login-error");
  window.fleetwatch = { login: "ready" };
  const raw = new URLSearchParams(location.search).get("next") || "/";
  const next = raw.startsWith("/") && !raw.startsWith("//") && !raw.startsWith("/login") ? raw : "/";
  document.getElementById("lang").addEventListener("click", () => {
    window.fwLang = window.fwLang === "zh" ? "en" : "zh";
    localStorage.setItem("fw-lang", window.fwLang);
    window.applyI18n();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = false;
    err.classList.remove("bad");
    err.textContent = window.t("login_busy");
    const body = { username: form.elements.username.value.trim(), password: form.elements.password.value };
    let r;
    try {
      r = await fetch("/api/auth/login", { method: "POST", headers: { "Content-Type": "application/json" },
                                            body: JSON.stringify(body) });
    } catch (e) {
      r = null;
    }
    if (!r || !r.ok) {
      err.textContent = window.t("login_failed");
      err.classList.add("bad");
      form.elements.password.value = "";
      window.fleetwatch.login = "failed";
      return;
    }
    const got = await r.json();
    sessionStorage.setItem("fw-token", got.token);
    window.fleetwatch.login = "ok";
    location.replace(next);
  });
  window.applyI18n();
})();
