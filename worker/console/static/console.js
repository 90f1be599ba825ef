// The one script of the console, and an optional one: "select every job on this page".
// Everything works without it.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll('#jobs input[name="job"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });
});
