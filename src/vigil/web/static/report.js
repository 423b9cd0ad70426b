// The public report form: sends the report and shows the reference number that comes back.
"use strict";

(() => {
  const form = document.getElementById("report");
  const status = document.getElementById("report-status");
  const problem = document.getElementById("report-problem");
  const messages = {
    413: "The file is too large. Send a smaller one, or just the web address.",
    429: "You have sent several reports in a short time. Please try again later.",
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    problem.textContent = "";
    const file = form.elements.file.files[0];
    if (file && file.size > Number(form.dataset.maxBytes)) {
      problem.textContent = messages[413];
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch("/v1/reports", { method: "POST", body: new FormData(form) });
      const data = await response.json().catch(() => ({}));
      if (response.ok) {
        form.reset();
        status.textContent = `Thank you. Your report reference is ${data.reference}.`;
      } else {
        problem.textContent = messages[response.status] ?? String(data.detail ?? "The report could not be sent.");
      }
    } catch {
      problem.textContent = "The report could not be sent. Check your connection and try again.";
    } finally {
      button.disabled = false;
    }
  });
})();
