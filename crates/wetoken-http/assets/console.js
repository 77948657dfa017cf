// wetoken console: the only script. Copy buttons; nothing else needs one.
document.addEventListener("click", function (e) {
  var b = e.target.closest("[data-copy]");
  if (!b || !navigator.clipboard) return;
  navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
    b.dataset.label = b.dataset.label || b.textContent;
    b.textContent = "✓";
    setTimeout(function () { b.textContent = b.dataset.label; }, 1500);
  });
});
document.addEventListener("click", function (e) {
  var a = e.target.closest("[data-back]");
  if (a) { e.preventDefault(); history.back(); }
});
