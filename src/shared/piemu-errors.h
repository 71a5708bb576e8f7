/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#define PIEMU_ERROR_INVALID_NAME    "org.piemu.Error.InvalidName"
#define PIEMU_ERROR_NO_SUCH_BOARD   "org.piemu.Error.NoSuchBoard"
#define PIEMU_ERROR_BOARD_EXISTS    "org.piemu.Error.BoardExists"
#define PIEMU_ERROR_NO_SUCH_IMAGE   "org.piemu.Error.NoSuchImage"
#define PIEMU_ERROR_NOT_RUNNING     "org.piemu.Error.NotRunning"
#define PIEMU_ERROR_ALREADY_RUNNING "org.piemu.Error.AlreadyRunning"
#define PIEMU_ERROR_INVALID_PIN     "org.piemu.Error.InvalidPin"
#define PIEMU_ERROR_INVALID_OPTION  "org.piemu.Error.InvalidOption"
#define PIEMU_ERROR_BUSY            "org.piemu.Error.Busy"
#define PIEMU_ERROR_FAILED          "org.piemu.Error.Failed"
/* libvirtd is away and piemud reconnects: try again. */
#define PIEMU_ERROR_UNAVAILABLE  "org.piemu.Error.Unavailable"
#define PIEMU_ERROR_IMAGE_IN_USE "org.piemu.Error.Busy"

/* ImportImageFile: what is wrong with the image file (the message says more). */
#define PIEMU_ERROR_IMAGE_NOT_MBR           "org.piemu.Error.ImageNotMBR"
#define PIEMU_ERROR_IMAGE_NO_BOOT_PARTITION "org.piemu.Error.ImageNoBootPartition"
#define PIEMU_ERROR_IMAGE_NO_KERNEL         "org.piemu.Error.ImageNoKernel"
#define PIEMU_ERROR_IMAGE_NO_DTB            "org.piemu.Error.ImageNoDeviceTree"
#define PIEMU_ERROR_IMAGE_TRUNCATED         "org.piemu.Error.ImageTruncated"
#define PIEMU_ERROR_IMAGE_TOO_LARGE         "org.piemu.Error.ImageTooLarge"
#define PIEMU_ERROR_IMAGE_INVALID           "org.piemu.Error.ImageInvalid"

/* Wires between boards (AddWire, RemoveWire). */
#define PIEMU_ERROR_NO_SUCH_WIRE "org.piemu.Error.NoSuchWire"
#define PIEMU_ERROR_WIRE_EXISTS  "org.piemu.Error.WireExists"
#define PIEMU_ERROR_PIN_DRIVEN   "org.piemu.Error.PinDriven"
#define PIEMU_ERROR_WIRE_CYCLE   "org.piemu.Error.WireCycle"

/* CreateBoard: the image does not boot on the model (the message lists the ones it does). */
#define PIEMU_ERROR_IMAGE_MODEL "org.piemu.Error.ImageModelMismatch"

/* SetSensor: the board has no I2C device at that address. */
#define PIEMU_ERROR_NO_SUCH_SENSOR "org.piemu.Error.NoSuchSensor"
