// Chinese and English labels; the choice is remembered in localStorage.
window.FW_I18N = {
  zh: { title: "FleetWatch · 五车实时监管", vehicles: "车辆", updated: "更新", connecting: "连接中…",
        sweeper: "清扫车", sprinkler: "洒水车", muck_truck: "渣土车", concrete_mixer: "商砼车",
        refuse_truck: "垃圾运输车", unknown: "未登记", alarm: "报警" },
  en: { title: "FleetWatch · live fleet compliance", vehicles: "vehicles", updated: "updated",
        connecting: "connecting…", sweeper: "Sweeper", sprinkler: "Sprinkler", muck_truck: "Muck truck",
        concrete_mixer: "Concrete mixer", refuse_truck: "Refuse truck", unknown: "Unregistered", alarm: "Alarm" },
};
window.fwLang = localStorage.getItem("fw-lang") || "zh";
window.t = (key) => (window.FW_I18N[window.fwLang] || {})[key] || key;
window.applyI18n = () => {
  document.documentElement.lang = window.fwLang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = window.t(el.dataset.i18n); });
};
document.getElementById("lang").addEventListener("click", () => {
  window.fwLang = window.fwLang === "zh" ? "en" : "zh";
  localStorage.setItem("fw-lang", window.fwLang);
  window.applyI18n();
  if (window.fwRender) window.fwRender();
});
window.applyI18n();
