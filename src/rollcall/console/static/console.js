// The console works without JavaScript; this only saves a click where a choice is the whole form.
document.querySelectorAll("select[data-submit-on-change]").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});
