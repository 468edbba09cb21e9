// pix-host console: the only script. Forms marked data-confirm ask before they submit
// (rollback, reject); everything else works without JavaScript.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
