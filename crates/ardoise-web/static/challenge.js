// Ardoise: the short check asked before signing in from a network with
// many failed sign-ins (surge layer). It finds n such that
// SHA-256(challenge ":" n) starts with the asked number of zero bits, puts
// it in a cookie, then lets the form go. Without this script (or without
// WebCrypto), the server accepts the form once the shown delay is over.
(function () {
  "use strict";
  var form = document.querySelector("form[data-challenge]");
  if (!form || !window.crypto || !window.crypto.subtle || !window.TextEncoder) {
    return;
  }
  var token = form.getAttribute("data-challenge");
  var bits = parseInt(form.getAttribute("data-bits"), 10) || 0;
  var status = document.getElementById("challenge-status");
  var encoder = new TextEncoder();
  var done = false;

  function zeroBits(buffer) {
    var bytes = new Uint8Array(buffer);
    var n = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) {
        n += 8;
        continue;
      }
      var b = bytes[i];
      while ((b & 0x80) === 0) {
        n += 1;
        b <<= 1;
      }
      break;
    }
    return n;
  }

  function search(n) {
    return window.crypto.subtle
      .digest("SHA-256", encoder.encode(token + ":" + n))
      .then(function (hash) {
        return zeroBits(hash) >= bits ? n : search(n + 1);
      });
  }

  var answer = search(0).then(function (n) {
    document.cookie = "ardoise_challenge_solution=" + n + "; path=/; SameSite=Lax";
    done = true;
    if (status && status.getAttribute("data-done")) {
      status.textContent = status.getAttribute("data-done");
    }
  });

  form.addEventListener("submit", function (event) {
    if (done) {
      return;
    }
    event.preventDefault();
    answer.then(function () {
      form.submit();
    });
  });
})();
