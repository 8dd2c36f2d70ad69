// Debian's headless Chromium, started as this machine allows (as root, with no
// network of its own to reach): what the browser tests share.
import { chromium } from "playwright-core";

/** Starts Chromium (CHROMIUM names another binary). */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}
