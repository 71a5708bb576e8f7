// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The Cockpit page's errors.js as built (its map written in from src/shared/error-table.c by
// gen-tables) against the table itself (gen-tables errors-json): every error name reads as the
// table's sentence, followed by piemud's message where the table says the detail is in it, and
// the refusals (exit status 5) as the page's "not allowed" sentences.
//   node test-errors-js.js BUILT_ERRORS_JS TABLE_JSON
"use strict";

const fs = require("fs");
const vm = require("vm");

const [errorsJs, tableJson] = process.argv.slice(2);
const code = fs.readFileSync(errorsJs, "utf8");
const table = JSON.parse(fs.readFileSync(tableJson, "utf8"));
let failures = 0;

function check(ok, what) {
    if (!ok) {
        console.error("check failed: " + what);
        failures++;
    }
}

check(!code.includes("gen-tables:"), "the marker line was replaced");
const window = {};
vm.runInNewContext(code, { window });
const { describeError } = window.piemuErrors;

check(table.length >= 30, "the table has its rows (" + table.length + ")");
for (const row of table) {
    const got = describeError({ name: row.name, message: "DETAIL" });
    let want = row.sentence;
    if (row.exit_code === 5)
        want = "You are not allowed to do that";
    else if (row.with_detail)
        want = row.sentence + " DETAIL";
    check(got === want, row.name + ": \"" + got + "\", want \"" + want + "\"");
    if (row.exit_code === 5)
        check(describeError({ name: row.name }, { what: "image" }) === "You may not manage images on this host",
              row.name + " is a refusal about images");
}
// Names outside the table keep their own message; nothing at all still reads as a sentence.
check(describeError({ name: "org.example.Other", message: "its text" }) === "its text", "unknown name");
check(describeError(null) === "Something went wrong.", "no error");

if (failures) {
    console.error(failures + " check(s) failed");
    process.exit(1);
}
console.log("test-errors-js: ok (" + table.length + " rows)");
