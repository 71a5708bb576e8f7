// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The Raspberry Pi 3 B's 40-pin header, drawn the way it sits on the board: two columns of 20,
// physical pin 1 (3V3) at the top left, odd pins on the left, even pins on the right. GPIO pins
// carry their BCM number, which is what piemud's SetPin/GetPin/GpioChanged call a "pin".
"use strict";

(function () {
    // Physical pin -> what is on it. bcm is set for GPIO pins (ID_SD/ID_SC are GPIO 0/1, wired to
    // the HAT EEPROM on a real board, still plain GPIO to the SoC). alt names the usual function.
    const PINS = {
        1: { label: "3V3", kind: "power3" }, 2: { label: "5V", kind: "power5" },
        3: { bcm: 2, alt: "SDA1" }, 4: { label: "5V", kind: "power5" },
        5: { bcm: 3, alt: "SCL1" }, 6: { label: "GND", kind: "ground" },
        7: { bcm: 4, alt: "GPCLK0" }, 8: { bcm: 14, alt: "TXD" },
        9: { label: "GND", kind: "ground" }, 10: { bcm: 15, alt: "RXD" },
        11: { bcm: 17 }, 12: { bcm: 18, alt: "PCM_CLK" },
        13: { bcm: 27 }, 14: { label: "GND", kind: "ground" },
        15: { bcm: 22 }, 16: { bcm: 23 },
        17: { label: "3V3", kind: "power3" }, 18: { bcm: 24 },
        19: { bcm: 10, alt: "MOSI" }, 20: { label: "GND", kind: "ground" },
        21: { bcm: 9, alt: "MISO" }, 22: { bcm: 25 },
        23: { bcm: 11, alt: "SCLK" }, 24: { bcm: 8, alt: "CE0" },
        25: { label: "GND", kind: "ground" }, 26: { bcm: 7, alt: "CE1" },
        27: { bcm: 0, label: "ID_SD", kind: "id" }, 28: { bcm: 1, label: "ID_SC", kind: "id" },
        29: { bcm: 5 }, 30: { label: "GND", kind: "ground" },
        31: { bcm: 6 }, 32: { bcm: 12, alt: "PWM0" },
        33: { bcm: 13, alt: "PWM1" }, 34: { label: "GND", kind: "ground" },
        35: { bcm: 19, alt: "PCM_FS" }, 36: { bcm: 16 },
        37: { bcm: 26 }, 38: { bcm: 20, alt: "PCM_DIN" },
        39: { label: "GND", kind: "ground" }, 40: { bcm: 21, alt: "PCM_DOUT" },
    };

    // One header view. onToggle(bcm, currentLevel) is called on a click on a GPIO pin.
    class GpioHeader {
        constructor(container, onToggle) {
            this.container = container;
            this.onToggle = onToggle;
            this.buttons = new Map(); // bcm -> element
            this.enabled = true;
            this.render();
        }

        render() {
            const grid = document.createElement("div");
            grid.className = "gpio-header";
            grid.setAttribute("role", "group");
            grid.setAttribute("aria-label", "40-pin GPIO header");
            for (let row = 0; row < 20; row++) {
                // Left column: odd pins, label outside (left of the pin); right column mirrored.
                for (const phys of [2 * row + 1, 2 * row + 2]) {
                    const info = PINS[phys];
                    const left = phys % 2 === 1;
                    const cell = document.createElement("div");
                    cell.className = "gpio-cell " + (left ? "left" : "right");
                    const name = document.createElement("span");
                    name.className = "gpio-name";
                    const pin = document.createElement(info.bcm !== undefined ? "button" : "span");
                    pin.className = "gpio-pin " + (info.kind || "gpio");
                    pin.dataset.phys = String(phys);
                    pin.textContent = String(phys);
                    if (info.bcm !== undefined) {
                        const label = info.label ? info.label + " (GPIO" + info.bcm + ")" : "GPIO" + info.bcm;
                        name.textContent = label + (info.alt ? " " + info.alt : "");
                        pin.type = "button";
                        pin.dataset.pin = String(info.bcm);
                        pin.dataset.level = "unknown";
                        pin.title = "BCM " + info.bcm + " (physical pin " + phys + "): level unknown";
                        pin.addEventListener("click", () => {
                            if (this.enabled)
                                this.onToggle(info.bcm, pin.dataset.level === "1");
                        });
                        this.buttons.set(info.bcm, pin);
                    } else {
                        name.textContent = info.label;
                        pin.title = info.label + " (physical pin " + phys + ")";
                    }
                    if (left)
                        cell.append(name, pin);
                    else
                        cell.append(pin, name);
                    grid.append(cell);
                }
            }
            this.container.replaceChildren(grid);
        }

        // level: true/false, or null while the board is not running (nothing to show).
        setLevel(bcm, level) {
            const pin = this.buttons.get(bcm);
            if (!pin)
                return;
            const text = level === null ? "unknown" : level ? "1" : "0";
            pin.dataset.level = text;
            pin.title = "BCM " + bcm + " (physical pin " + pin.dataset.phys + "): " +
                (level === null ? "level unknown" : level ? "high" : "low");
        }

        // levels: GetPins' array of 54 booleans indexed by BCM number, or null.
        setAll(levels) {
            for (const bcm of this.buttons.keys())
                this.setLevel(bcm, levels ? !!levels[bcm] : null);
        }

        setEnabled(enabled) {
            this.enabled = enabled;
            for (const pin of this.buttons.values())
                pin.disabled = !enabled;
        }
    }

    window.PiemuHeader = GpioHeader;
})();
