// The operators' console in Debian's Chromium, clicked and typed as an
// operator would: a company registers with a serial no company has and
// waits; Olga logs in, assigns an unassigned device, disables and enables
// an agent, makes and withdraws a join token, adds a company and imports
// its contract lines, approves the waiting registration into it, writes,
// changes and deletes a knowledge article, and retries a dead e-mail. Then
// every console page at desktop and phone width. Each page is checked
// (lib.mjs: axe-core, console, width) and photographed.
//
// node console.mjs  (env: BASE_URL, MAILDIR, SCREENSHOTS, OPERATOR_EMAIL,
//                    OPERATOR_PASSWORD, CHROMIUM)
import { base, checkPage, fail, finish, launch, mailedLink, mainText, onPortal, open } from "./lib.mjs";

const maildir = process.env.MAILDIR;
const olga = { email: process.env.OPERATOR_EMAIL, password: process.env.OPERATOR_PASSWORD };

const browser = await launch();
const { context, page, problems } = await open(browser, 1280, 800);
const shot = (name) => checkPage(page, `console-${name}`, problems);
const menu = (name) => page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true });
const expectText = async (want, what) => {
  const text = await mainText(page);
  for (const w of [].concat(want)) if (!text.includes(w)) fail(`${what}: the page lacks ${JSON.stringify(w)}`);
};
const csrfPost = (name) => page.getByRole("button", { name, exact: true });

// 1. Zeta registers with a serial no company has: it waits for an operator.
await page.goto(`${base}/register`);
await page.getByLabel("Company name").fill("Zeta Spa");
await page.getByLabel("First name").fill("Zoe");
await page.getByLabel("Last name").fill("Zanetti");
await page.getByLabel("E-mail address").fill("zoe@zeta.example");
await page.getByLabel("Phone").fill("+39 06 555 0199");
await page.getByLabel("Serial numbers of your products").fill("Z-404");
await page.getByRole("button", { name: "Register" }).click();
await page.goto(onPortal(await mailedLink(maildir, "zoe@zeta.example", "/register/confirm")));
await page.getByLabel("New password", { exact: true }).fill("zebra crossing at noon");
await page.getByLabel("The new password again").fill("zebra crossing at noon");
await page.getByRole("button", { name: "Complete the registration" }).click();
await expectText("the service provider checks your registration", "a registration that waits");
await shot("registration-queued");

// 2. Olga logs in; the console's overview.
await page.goto(`${base}/login`);
await page.getByLabel("E-mail address").fill(olga.email);
await page.getByLabel("Password", { exact: true }).fill(olga.password);
await page.getByRole("button", { name: "Log in" }).click();
await page.waitForURL(`${base}/`);
await page.getByRole("navigation", { name: "Main menu" }).getByRole("link", { name: "Console" }).click();
await expectText(["Agents", "Unassigned devices", "Registrations"], "the overview");
await shot("overview");

// 3. The unassigned device X-9 goes to Acme.
await menu("Unassigned devices").click();
await expectText("X-9", "the unassigned devices");
await page.getByLabel("Assign to: X-9").selectOption("acme");
await page.getByRole("button", { name: "Assign" }).click();
await page.waitForURL(/done=device-assigned$/);
await expectText("Every device belongs to a company", "after assigning");
await shot("devices");

// 4. agent-x disabled, then enabled again.
await menu("Agents").click();
await page.getByRole("button", { name: "Disable: agent-x" }).click();
await page.waitForURL(/done=agent-disabled$/);
if (!(await page.getByRole("row", { name: /agent-x/ }).textContent()).includes("disabled")) fail("agent-x is not shown disabled");
await shot("agents");
await page.getByRole("button", { name: "Enable: agent-x" }).click();
await page.waitForURL(/done=agent-enabled$/);

// 5. A join token for Acme, shown once, then withdrawn.
await menu("Join tokens").click();
await page.getByLabel("Company").selectOption("acme");
await page.getByRole("button", { name: "Make the token" }).click();
await expectText("The new join token", "after making a token");
const token = (await page.locator(".secret code").textContent()).trim();
if (token.length < 20) fail(`the token shown is ${JSON.stringify(token)}`);
await shot("join-token");
await page.getByRole("button", { name: /^Withdraw/ }).first().click();
await page.waitForURL(/done=token-withdrawn$/);

// 6. A company with its contract lines; the waiting registration joins it.
await menu("Companies").click();
await page.getByLabel("Id", { exact: true }).fill("gamma");
await page.getByLabel("Name", { exact: true }).fill("Gamma Srl");
await page.getByLabel("Billing customer code").fill("B-3000");
await page.getByLabel("Service customer code").fill("S-3000");
await page.getByLabel("Time zone").fill("Europe/Rome");
await page.getByRole("button", { name: "Add the company" }).click();
await page.waitForURL(/\/console\/companies\/gamma\?done=company-saved$/);
await page.getByLabel("Contract lines (CSV)").fill(
  "contract_number,item,service,kind,starts_on,ends_on\nK-77,10,copies,service,2026-01-01,2026-12-31\nK-77,20,toner,service,2026-01-01,\n");
await page.getByRole("button", { name: "Import", exact: true }).click();
await page.waitForURL(/done=lines-imported$/);
await expectText(["K-77", "copies", "toner"], "the imported lines");
await shot("company");
await page.getByRole("button", { name: "Remove: K-77 20" }).click();
await page.waitForURL(/done=line-removed$/);
if ((await mainText(page)).includes("toner")) fail("the removed line is still shown");
await page.goto(`${base}/console/registrations`);
await expectText("Zeta Spa", "the registrations waiting");
await page.getByLabel("Company").selectOption("gamma");
await shot("registrations");
await page.getByRole("button", { name: "Approve" }).click();
await page.waitForURL(/done=registration-approved$/);

// 7. An article written, changed, deleted.
await menu("Knowledge base").click();
await page.getByRole("link", { name: "New article" }).click();
await page.getByLabel("Id", { exact: true }).fill("kb-e602-hdd");
await page.getByLabel("Category").selectOption("error_code");
await page.getByLabel("Error code").fill("E602-0001");
await page.getByLabel("Models").fill("iR-ADV C5560, iR-ADV C3530");
await page.getByLabel("Title").fill("E602-0001: the hard disk is not found");
await page.getByLabel("Text").fill("Switch the device off and on again.\n\nIf the code comes back, call the service.");
await shot("article-new");
await page.getByRole("button", { name: "Save" }).click();
await page.waitForURL(/\/console\/knowledge\?done=article-saved$/);
await page.getByLabel("Words or an error code").fill("E602-0001");
await page.getByRole("button", { name: "Search" }).click();
await page.getByRole("link", { name: "E602-0001: the hard disk is not found" }).click();
await page.getByLabel("Title").fill("E602-0001: the hard disk does not answer");
await page.getByRole("button", { name: "Save" }).click();
await page.waitForURL(/done=article-saved$/);
await expectText("the hard disk does not answer", "the changed article");
await shot("knowledge");
await page.getByRole("button", { name: "Delete: E602-0001: the hard disk does not answer" }).click();
await shot("article-delete");
await csrfPost("Delete").click();
await page.waitForURL(/done=article-deleted$/);
if ((await mainText(page)).includes("hard disk does not answer")) fail("the deleted article is still listed");

// 8. The dead e-mail tried again.
await menu("Queues").click();
await page.getByRole("link", { name: "E-mail" }).click();
await page.getByRole("link", { name: "Show dead letters" }).click();
await expectText("550 mailbox unavailable", "the dead letter");
await shot("queues-dead");
await page.getByRole("button", { name: /^Try again/ }).first().click();
await page.waitForURL(/done=retried$/);
await expectText("back in line", "after retrying");
await context.close();

// 9. Every console page at desktop and phone width.
for (const [width, height, label] of [[1280, 800, "desktop"], [390, 844, "phone"]]) {
  const visit = await open(browser, width, height);
  const p = visit.page;
  await p.goto(`${base}/login`);
  await p.getByLabel("E-mail address").fill(olga.email);
  await p.getByLabel("Password", { exact: true }).fill(olga.password);
  await p.getByRole("button", { name: "Log in" }).click();
  await p.waitForURL(`${base}/`);
  for (const [name, path] of [
    ["console", "/console"], ["console-agents", "/console/agents"], ["console-join-tokens", "/console/join-tokens"],
    ["console-devices", "/console/devices"], ["console-attention", "/console/attention"],
    ["console-companies", "/console/companies"], ["console-company", "/console/companies/gamma"],
    ["console-knowledge", "/console/knowledge"], ["console-article", "/console/knowledge/edit?id=kb-jam-duplex"],
    ["console-queues", "/console/queues"], ["console-queues-email", "/console/queues?queue=email&state=dead"],
    ["console-registrations", "/console/registrations"], ["operator-home", "/"], ["operator-products", "/products"],
  ]) {
    await p.goto(`${base}${path}`);
    await checkPage(p, `${label}-${name}`, visit.problems);
  }
  await visit.context.close();
}

await browser.close();
finish("console");
