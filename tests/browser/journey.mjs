// A customer's first days with meterlink's portal, clicked and typed as a
// person would in Debian's Chromium: Bea registers her company and
// confirms from the e-mail, logs in, invites Paolo (a Product
// Administrator) and Dora; Paolo accepts, Dora declines; Bea makes a group
// with the wizard and gives it to Paolo, opens a service request and finds
// it among the open ones, comments on it, enters a meter reading and sees
// it in the chart, names a product, searches the knowledge centre, turns on
// the second factor, switches to Italian and logs out. Paolo sees only his
// products, forgets his password and sets a new one from the e-mail.
// Then every page is visited at desktop and phone width. Each page is
// checked (lib.mjs: axe-core, console, width) and photographed.
//
// node journey.mjs  (env: BASE_URL, MAILDIR, SCREENSHOTS, TOUR_EMAIL,
//                    TOUR_PASSWORD, CHROMIUM)
import { createHmac } from "node:crypto";
import { base, checkPage, fail, finish, launch, mailedLink, mainText, onPortal, open } from "./lib.mjs";

const maildir = process.env.MAILDIR;
const bea = { email: "bea@beta.example", password: "lantern orchard seventeen" };
const paolo = { email: "paolo@beta.example", password: "copper kettle on the hill" };
const dora = { email: "dora@beta.example" };

// RFC 6238 code for a base32 secret, as an authenticator app shows it.
function totp(secret) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30_000)));
  const h = createHmac("sha1", key).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

async function logIn(page, who) {
  await page.goto(`${base}/login`);
  await page.getByLabel("E-mail address").fill(who.email);
  await page.getByLabel("Password", { exact: true }).fill(who.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`${base}/`);
}

async function logOut(page, label = "Log out") {
  await page.getByRole("button", { name: label }).click();
  await page.waitForURL(/\/login\?why=out$/);
}

// A link of the main menu.
const menu = (page, name) => page.getByRole("navigation", { name: "Main menu" }).getByRole("link", { name, exact: true });

const expectText = async (page, want, what) => {
  const text = await mainText(page);
  for (const w of [].concat(want)) if (!text.includes(w)) fail(`${what}: the page lacks ${JSON.stringify(w)}`);
};

const browser = await launch();
const { context, page, problems } = await open(browser, 1280, 800);
const shot = (name) => checkPage(page, `journey-${name}`, problems);

// 1. Bea registers her company with a serial number under contract.
await page.goto(`${base}/login`);
await page.getByRole("link", { name: "New customer? Register your company" }).click();
await page.getByLabel("Company name").fill("Beta Srl");
await page.getByLabel("First name").fill("Bea");
await page.getByLabel("Last name").fill("Bianchi");
await page.getByLabel("E-mail address").fill(bea.email);
await page.getByLabel("Phone").fill("+39 02 555 0101");
await page.getByLabel("Serial numbers of your products").fill("C-1");
await shot("register");
await page.getByRole("button", { name: "Register" }).click();
await expectText(page, "Check your e-mail", "after registering");
await shot("register-sent");

// 2. The link in the e-mail; a mistyped repeat first.
await page.goto(onPortal(await mailedLink(maildir, bea.email, "/register/confirm")));
await page.getByLabel("New password", { exact: true }).fill(bea.password);
await page.getByLabel("The new password again").fill("lantern orchard seventeen!");
await page.getByRole("button", { name: "Complete the registration" }).click();
if (!((await page.getByRole("alert").textContent()) || "").includes("not the same")) fail("a mistyped repeat was not said");
await shot("confirm-mismatch");
await page.getByLabel("New password", { exact: true }).fill(bea.password);
await page.getByLabel("The new password again").fill(bea.password);
await page.getByRole("button", { name: "Complete the registration" }).click();
await expectText(page, ["Registration complete", "account manager"], "after confirming");
await shot("confirmed");
await page.getByRole("link", { name: "Go to the login page" }).click();

// 3. Bea logs in and invites Paolo (Product Administrator of C-1) and Dora.
await logIn(page, bea);
if (!(await page.getByRole("heading", { level: 1 }).textContent()).includes("Bea Bianchi")) fail("Bea is not welcomed by name");
await shot("home");
await page.getByRole("link", { name: "Invite Product Administrators for given products" }).click();
await page.getByLabel("First name").fill("Paolo");
await page.getByLabel("Last name").fill("Verdi");
await page.getByLabel("E-mail address").fill(paolo.email);
await page.getByLabel("Serial numbers of products they administer").fill("C-1");
await shot("invite");
await page.getByRole("button", { name: "Send the invitation" }).click();
await page.waitForURL(/\/users\?state=pending&done=invited$/);
await expectText(page, ["The invitation is on its way", "Paolo Verdi"], "the pending users");
await page.getByRole("link", { name: "Invite a colleague" }).click();
await page.getByLabel("First name").fill("Dora");
await page.getByLabel("Last name").fill("Neri");
await page.getByLabel("E-mail address").fill(dora.email);
await page.getByRole("button", { name: "Send the invitation" }).click();
await page.waitForURL(/done=invited$/);
await shot("users-pending");
await logOut(page);

// 4. Paolo accepts from his e-mail; Dora declines from hers.
await page.goto(onPortal(await mailedLink(maildir, paolo.email, "/invitation/accept")));
await expectText(page, "Accept the invitation", "the invitation page");
await page.getByLabel("New password", { exact: true }).fill(paolo.password);
await page.getByLabel("The new password again").fill(paolo.password);
await shot("accept");
await page.getByRole("button", { name: "Accept and choose the password" }).click();
await expectText(page, "Your account is ready", "after accepting");
await page.goto(onPortal(await mailedLink(maildir, dora.email, "/invitation/decline")));
await shot("decline");
await page.getByRole("button", { name: "Decline the invitation" }).click();
await expectText(page, "You declined the invitation", "after declining");

// 5. Bea: Paolo is active, Dora refused; a group with the wizard.
await logIn(page, bea);
await menu(page, "Users").click();
await expectText(page, "Paolo Verdi", "the active users");
await page.getByRole("link", { name: "Refused" }).click();
await expectText(page, "Dora Neri", "the refused users");
await shot("users-refused");
await menu(page, "Products").click();
await page.getByRole("link", { name: "Groups" }).click();
await page.getByRole("link", { name: "New group" }).click();
await page.getByLabel("Group name").fill("East wing print room");
await shot("group-wizard-name");
await page.getByRole("button", { name: "Next: choose the products" }).click();
await page.getByRole("checkbox", { name: /^C-2/ }).check();
await shot("group-wizard-products");
await page.getByRole("button", { name: "Create the group" }).click();
await page.waitForURL(/\/groups\/\d+\?done=group-created$/);
await expectText(page, ["The group is created", "C-2"], "the new group");
await page.getByLabel("Make a Product Administrator of every product in the group").selectOption({ label: "Paolo Verdi" });
await page.getByRole("button", { name: "Assign", exact: true }).click();
await page.waitForURL(/done=group-admin-added$/);
await expectText(page, "Paolo Verdi", "the group's administrators");
await shot("group");
// The product list by group, then by status.
await menu(page, "Products").click();
await page.getByLabel("Group").selectOption("East wing print room");
await page.getByRole("button", { name: "Search" }).click();
let listed = await page.getByRole("table").textContent();
if (!listed.includes("C-2") || listed.includes("C-1") || listed.includes("C-3")) fail(`the group filter listed ${listed}`);
await page.getByLabel("Group").selectOption("");
await page.getByLabel("Status").selectOption("manual");
await page.getByRole("button", { name: "Search" }).click();
listed = await page.getByRole("table").textContent();
if (!listed.includes("C-2") || listed.includes("C-1")) fail(`the status filter listed ${listed}`);
await shot("products-filtered");

// 6. A service request for C-1, found among the open ones.
await menu(page, "Activity panel").click();
await page.getByRole("link", { name: "New service request" }).click();
await page.getByLabel("Product").selectOption("C-1");
await page.getByLabel("Subject").fill("Toner smears on every page");
await page.getByLabel("What happens").fill("Grey streaks down the left side since Monday.");
await shot("request-new");
await page.getByRole("button", { name: "Send the request" }).click();
await page.waitForURL(/\/requests\/[^/?]+\?done=request-opened$/);
await expectText(page, ["The request is open", "Toner smears on every page", "Grey streaks"], "the new request");
await page.getByLabel("Add a comment").fill("It happens on the second tray only.");
await page.getByRole("button", { name: "Send the comment" }).click();
await page.waitForURL(/done=commented$/);
await expectText(page, "second tray only", "the request's history");
await shot("request");
await menu(page, "Activity panel").click();
await page.getByLabel("Show").selectOption("closed");
await page.getByRole("button", { name: "Show" }).click();
await expectText(page, "No closed request", "the closed filter");
await page.getByLabel("Show").selectOption("open");
await page.getByRole("button", { name: "Show" }).click();
await page.waitForURL(/state=open/);
if (!(await page.getByRole("table").textContent()).includes("Toner smears on every page")) fail("the request is not among the open ones");
await shot("activity-open");

// 7. A meter reading for C-2 (no eMaintenance), seen in the chart.
await page.goto(`${base}/products/C-2`);
await page.getByLabel("Reading of canon.101").fill("10450");
await page.getByRole("button", { name: "Save the reading" }).click();
await page.waitForURL(/\/products\/C-2\?counter=canon\.101#readings$/);
const chart = page.getByRole("img", { name: /canon\.101/ });
if (!(await chart.getAttribute("alt")).includes("10450")) fail("the reading is not in the chart");
if (!(await chart.evaluate((img) => img.complete && img.naturalWidth > 0))) fail("the chart did not load");

// 8. C-1 gets a name and a place; the knowledge centre; the companies.
await page.goto(`${base}/products/C-1`);
await page.getByRole("link", { name: "Edit", exact: true }).click();
await page.getByLabel("Alternative name").fill("Reception");
await page.getByLabel("Location on site").fill("Ground floor, reception desk");
await shot("product-edit");
await page.getByRole("button", { name: "Save" }).click();
await page.waitForURL(/\/products\/C-1\?done=product-saved$/);
if (!(await page.getByRole("heading", { level: 1 }).textContent()).includes("Reception")) fail("the new name is not shown");
await shot("product");
await menu(page, "Knowledge centre").click();
await page.getByLabel("Words").fill("paper jam");
await page.getByRole("button", { name: "Search" }).click();
await page.getByRole("link", { name: "Paper jam in the duplex unit" }).click();
await expectText(page, "Open the duplex cover", "the article");
await shot("article");
await menu(page, "Customers").click();
await page.getByRole("link", { name: "Beta Srl" }).click();
await expectText(page, ["C-1", "Toner smears on every page"], "the company's page");
await shot("customer");

// 9. The second factor, then Italian, then logging out.
await menu(page, "Profile").click();
await page.getByRole("button", { name: "Turn on" }).click();
const secret = (await page.locator(".secret code").first().textContent()).trim();
await page.getByLabel("Code from the app").fill(totp(secret));
await page.getByRole("button", { name: "Confirm" }).click();
await expectText(page, ["The second factor is on", "recovery codes"], "the second factor");
if ((await page.locator("ul.codes li").count()) !== 10) fail("not ten recovery codes");
await shot("profile-totp");
await page.getByLabel("Language").selectOption("it");
await page.getByRole("button", { name: "Save" }).first().click();
await page.waitForURL(/\/profile\?done=profile-saved$/);
if ((await page.locator("html").getAttribute("lang")) !== "it") fail("the page is not in Italian after the switch");
await expectText(page, "I tuoi dati sono salvati", "the Italian notice");
if (!(await page.getByRole("link", { name: "Profilo" }).count())) fail("the menu is not in Italian");
await shot("profile-it");
await logOut(page, "Esci");

// 10. Paolo sees his products only: C-1 (his) and C-2 (his group's).
await logIn(page, paolo);
await menu(page, "Products").click();
const list = await page.getByRole("table").textContent();
for (const s of ["C-1", "C-2"]) if (!list.includes(s)) fail(`Paolo does not see ${s}`);
for (const s of ["C-3", "A-1", "B-2"]) if (list.includes(s)) fail(`Paolo sees ${s}, not his`);
if (await menu(page, "Users").count()) fail("Paolo is offered the Users page");
await shot("pa-products");
const other = await page.goto(`${base}/products/C-3`);
if (other.status() !== 404) fail(`another's product answered ${other.status()} to Paolo`);
await logOut(page);

// 11. Paolo forgets his password: a new one from the e-mailed link.
await page.getByRole("link", { name: "Forgot your password?" }).click();
await page.getByLabel("E-mail address").fill(paolo.email);
await shot("forgot");
await page.getByRole("button", { name: "Send the link" }).click();
await expectText(page, "Check your e-mail", "after asking for a reset");
await page.goto(onPortal(await mailedLink(maildir, paolo.email, "/reset-password")));
paolo.password = "violet harbour at dawn";
await page.getByLabel("New password", { exact: true }).fill(paolo.password);
await page.getByLabel("The new password again").fill(paolo.password);
await shot("reset");
await page.getByRole("button", { name: "Save the new password" }).click();
await expectText(page, "Your new password is saved", "after the reset");
await logIn(page, paolo);
await context.close();

// 12. Every page at desktop and phone width, as an Account Manager.
const tour = { email: process.env.TOUR_EMAIL, password: process.env.TOUR_PASSWORD };
for (const [width, height, label] of [[1280, 800, "desktop"], [390, 844, "phone"]]) {
  const visit = await open(browser, width, height);
  const p = visit.page;
  for (const [name, path] of [
    ["register", "/register"], ["forgot", "/reset-password"], ["confirm", "/register/confirm?token=00"],
    ["accept", "/invitation/accept?token=00"], ["decline", "/invitation/decline?token=00"],
  ]) {
    await p.goto(`${base}${path}`);
    await checkPage(p, `${label}-${name}`, visit.problems);
  }
  await logIn(p, tour);
  await p.goto(`${base}/requests`);
  const request = await p.locator("main table a[href^='/requests/']").first().getAttribute("href");
  await p.goto(`${base}/groups`);
  const group = await p.locator("main table a[href^='/groups/']").first().getAttribute("href");
  for (const [name, path] of [
    ["home", "/"], ["customers", "/customers"], ["customer", "/customers/acme"], ["products", "/products"],
    ["product", "/products/A-1"], ["product-edit", "/products/A-1/edit"], ["groups", "/groups"],
    ["group", group], ["group-new", "/groups/new"], ["activity", "/requests"], ["request", request],
    ["request-new", "/requests/new"], ["request-move", "/requests/new?kind=move"],
    ["request-information", "/requests/new?kind=information"], ["users", "/users"],
    ["invite", "/users/invite"], ["knowledge", "/knowledge?q=paper+jam"],
    ["article", "/knowledge/kb-jam-duplex"], ["profile", "/profile"], ["not-found", "/no-such-page"],
    ["not-understood", "/groups/not-a-number"],
  ]) {
    await p.goto(`${base}${path}`);
    await checkPage(p, `${label}-${name}`, visit.problems);
  }
  await visit.context.close();
}

await browser.close();
finish("journey");
