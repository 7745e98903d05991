// meterlink's web portal in Debian's Chromium, clicked and typed as a
// person would: log in (a wrong password first), the home page, Italian,
// log out; at desktop and phone width. Every page is checked with axe-core
// (no serious or critical violation) and must log no CSP violation or
// script error. Screenshots go to $SCREENSHOTS.
//
// node portal.mjs  (env: BASE_URL, EMAIL, PASSWORD, SCREENSHOTS, CHROMIUM)
import { base, checkPage, fail, finish, launch, open } from "./lib.mjs";

const email = process.env.EMAIL;
const password = process.env.PASSWORD;
const browser = await launch();

for (const [width, height, label] of [[1280, 800, "desktop"], [390, 844, "phone"]]) {
  const { context, page, problems } = await open(browser, width, height);

  // Not logged in: the home page sends to the login page.
  await page.goto(`${base}/`);
  if (!page.url().endsWith("/login")) fail(`${label}: / went to ${page.url()}, not the login page`);
  await checkPage(page, `${label}-login`, problems);

  // A wrong password: the error is said, the address typed stays.
  await page.getByLabel("E-mail address").fill(email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  const alert = page.getByRole("alert");
  if (!(await alert.textContent() || "").includes("wrong")) fail(`${label}: no error after a wrong password`);
  if ((await page.getByLabel("E-mail address").inputValue()) !== email) fail(`${label}: the e-mail typed was lost`);
  await checkPage(page, `${label}-login-error`, problems);

  // The right one: the home page, with the open request.
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`${base}/`);
  const h1 = await page.getByRole("heading", { level: 1 }).textContent();
  if (!h1.startsWith("Welcome")) fail(`${label}: home heading is ${JSON.stringify(h1)}`);
  if (!(await page.getByRole("table").last().textContent()).includes("Paper jam in tray 2")) {
    fail(`${label}: the open request is not on the home page`);
  }
  await checkPage(page, `${label}-home`, problems);

  // Products: the list, a search, the product's page.
  await page.getByRole("link", { name: "Products", exact: true }).click();
  await page.waitForURL(`${base}/products`);
  await page.getByLabel("Serial number, alternative name, model or location").fill("A-1");
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/\/products\?q=A-1/);
  await checkPage(page, `${label}-products`, problems);
  await page.getByRole("link", { name: "A-1", exact: true }).click();
  await page.waitForURL(`${base}/products/A-1`);
  const product = await page.locator("main").textContent();
  for (const want of ["iR-ADV C5560", "184527", "Drawer 2", "A3, 420 x 297 mm", "Some left", "Finisher Tray A",
                      "Paper jam in tray 2", "Knowledge centre", "One reading so far",
                      "Black Toner", "42 %", "Within 8 hours of coverage", "Mon Tue Wed Thu Fri, 08:00–18:00", "On site"]) {
    if (!product.includes(want)) fail(`${label}: the product page lacks ${JSON.stringify(want)}`);
  }
  await checkPage(page, `${label}-product`, problems);

  // B-2 has no eMaintenance: a reading entered by hand, a wrong one first.
  await page.goto(`${base}/products/B-2`);
  await page.getByLabel("Reading of canon.101").fill("4000");
  await page.getByRole("button", { name: "Save the reading" }).click();
  const readingError = await page.getByRole("alert").textContent();
  if (!readingError.includes("lower than the last reading")) fail(`${label}: a lower reading said ${JSON.stringify(readingError)}`);
  if ((await page.getByLabel("Reading of canon.101").inputValue()) !== "4000") fail(`${label}: the value typed was lost`);
  await checkPage(page, `${label}-reading-error`, problems);
  const value = label === "desktop" ? "5300" : "5600";
  await page.getByLabel("Reading of canon.101").fill(value);
  await page.getByRole("button", { name: "Save the reading" }).click();
  await page.waitForURL(/\/products\/B-2\?counter=canon\.101#readings$/);
  const chart = page.getByRole("img", { name: /canon\.101/ });
  if (!(await chart.getAttribute("alt")).includes(value)) fail(`${label}: the chart's text does not end at ${value}`);
  if (!(await chart.evaluate((img) => img.complete && img.naturalWidth > 0))) fail(`${label}: the chart image did not load`);
  const svg = await (await page.request.get(await chart.evaluate((img) => img.src))).text();
  if (!/#b45f06/i.test(svg)) fail(`${label}: the reading entered by hand is not marked (orange) in the chart`);
  await checkPage(page, `${label}-reading-entered`, problems);
  await page.getByRole("link", { name: "Home", exact: true }).click();

  // Log out: back at the login page, told so; the home page is closed.
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(/\/login\?why=out$/);
  if (!(await page.getByRole("status").textContent()).includes("logged out")) fail(`${label}: no logged-out notice`);
  await page.goto(`${base}/`);
  if (!page.url().endsWith("/login")) fail(`${label}: after logging out / went to ${page.url()}`);

  // Italian, chosen on the login page.
  await page.getByRole("link", { name: "Italiano" }).click();
  const it = await page.getByRole("heading", { level: 1 }).textContent();
  if (it !== "Accedi") fail(`${label}: Italian login heading is ${JSON.stringify(it)}`);
  if ((await page.locator("html").getAttribute("lang")) !== "it") fail(`${label}: html lang is not it`);
  await checkPage(page, `${label}-login-it`, problems);
  await context.close();
}

await browser.close();
finish("portal");
