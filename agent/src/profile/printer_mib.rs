//! Standard OIDs and enumerations of the Printer-MIB (RFC 3805,
//! IANA-PRINTER-MIB) and HOST-RESOURCES-MIB. These are standards, the same
//! for every brand; vendor specifics live in the profile files.

use crate::snmp::{oid, Oid};
use std::sync::LazyLock;

pub static SYS_DESCR: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.1.1.0"));
pub static SYS_OBJECT_ID: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.1.2.0"));
pub static PRINTER_MIB: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.43"));
pub static IF_PHYS_ADDRESS: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.2.2.1.6"));
pub static HR_DEVICE_STATUS: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.25.3.2.1.5.1"));
pub static HR_PRINTER_STATUS: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.25.3.5.1.1.1"));
pub static HR_PRINTER_ERROR_STATE: LazyLock<Oid> =
    LazyLock::new(|| oid("1.3.6.1.2.1.25.3.5.1.2.1"));
/// prtMarkerSuppliesTable columns (entry 1.3.6.1.2.1.43.11.1.1).
pub static SUPPLIES_ENTRY: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.43.11.1.1"));
pub const SUPPLY_COLUMNS: [u32; 6] = [4, 5, 6, 7, 8, 9];
/// prtAlertTable columns (entry 1.3.6.1.2.1.43.18.1.1).
pub static ALERT_ENTRY: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.43.18.1.1"));
pub const ALERT_COLUMNS: [u32; 5] = [2, 3, 4, 7, 8];
/// prtInputTable columns (entry 1.3.6.1.2.1.43.8.2.1): type, dimension
/// unit, media feed and cross-feed dimensions, maximum capacity, current
/// level, media name, name, description, media type.
pub static INPUT_ENTRY: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.43.8.2.1"));
pub const INPUT_COLUMNS: [u32; 10] = [2, 3, 4, 5, 9, 10, 12, 13, 18, 21];
/// prtOutputTable columns (entry 1.3.6.1.2.1.43.9.2.1): type, maximum
/// capacity, remaining capacity, name, description.
pub static OUTPUT_ENTRY: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.43.9.2.1"));
pub const OUTPUT_COLUMNS: [u32; 5] = [2, 4, 5, 7, 12];
/// prtMediaPathTable columns (entry 1.3.6.1.2.1.43.13.4.1): type,
/// description. A duplex path means a duplex unit.
pub static MEDIA_PATH_ENTRY: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.43.13.4.1"));
pub const MEDIA_PATH_COLUMNS: [u32; 2] = [9, 10];
/// hrDeviceTable columns (entry 1.3.6.1.2.1.25.3.2.1): type, description.
pub static HR_DEVICE_ENTRY: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.25.3.2.1"));
pub const HR_DEVICE_COLUMNS: [u32; 2] = [2, 3];
/// The arc under which hrDeviceType values sit (hrDeviceTypes).
pub static HR_DEVICE_TYPES: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.25.3.1"));
/// prtConsoleDisplayBufferText.
pub static CONSOLE_TEXT: LazyLock<Oid> = LazyLock::new(|| oid("1.3.6.1.2.1.43.16.5.1.2"));

pub fn device_status(v: i64) -> String {
    match v {
        1 => "unknown",
        2 => "running",
        3 => "warning",
        4 => "testing",
        5 => "down",
        _ => return format!("value {v}"),
    }
    .into()
}

pub fn printer_status(v: i64) -> String {
    match v {
        1 => "other",
        2 => "unknown",
        3 => "idle",
        4 => "printing",
        5 => "warmup",
        _ => return format!("value {v}"),
    }
    .into()
}

/// hrPrinterDetectedErrorState bit names; bit 0 is the most significant bit
/// of the first byte.
pub const ERROR_BITS: [&str; 16] = [
    "lowPaper",
    "noPaper",
    "lowToner",
    "noToner",
    "doorOpen",
    "jammed",
    "offline",
    "serviceRequested",
    "inputTrayMissing",
    "outputTrayMissing",
    "markerSupplyMissing",
    "outputNearFull",
    "outputFull",
    "inputTrayEmpty",
    "overduePreventMaint",
    "bit15",
];

/// Names the set bits of an error-state string of one or two bytes. Bytes
/// beyond the second carry no defined bits and are ignored.
pub fn error_bits(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, b) in bytes.iter().take(2).enumerate() {
        for bit in 0..8 {
            if b & (0x80 >> bit) != 0 {
                let n = i * 8 + bit;
                if n < 15 {
                    out.push(ERROR_BITS[n].to_string());
                }
            }
        }
    }
    out
}

pub fn alert_severity(v: i64) -> String {
    match v {
        1 => "other",
        3 => "critical",
        4 => "warning",
        5 => "warningBinaryChangeEvent",
        _ => return format!("value {v}"),
    }
    .into()
}

pub fn training_level(v: i64) -> String {
    match v {
        1 => "other",
        2 => "unknown",
        3 => "untrained",
        4 => "trained",
        5 => "fieldService",
        6 => "management",
        7 => "noInterventionRequired",
        _ => return format!("value {v}"),
    }
    .into()
}

pub fn alert_group(v: i64) -> String {
    match v {
        1 => "other",
        3 => "hostResourcesMIBStorageTable",
        4 => "hostResourcesMIBDeviceTable",
        5 => "generalPrinter",
        6 => "cover",
        7 => "localization",
        8 => "input",
        9 => "output",
        10 => "marker",
        11 => "markerSupplies",
        12 => "markerColorant",
        13 => "mediaPath",
        14 => "channel",
        15 => "interpreter",
        16 => "consoleDisplayBuffer",
        17 => "consoleLights",
        18 => "alert",
        30 => "finDevice",
        31 => "finSupply",
        32 => "finSupplyMediaInput",
        33 => "finAttribute",
        _ => return format!("value {v}"),
    }
    .into()
}

pub fn alert_code(v: i64) -> String {
    match v {
        1 => "other",
        2 => "unknown",
        3 => "coverOpen",
        4 => "coverClosed",
        5 => "interlockOpen",
        6 => "interlockClosed",
        7 => "configurationChange",
        8 => "jam",
        9 => "subunitMissing",
        10 => "subunitLifeAlmostOver",
        11 => "subunitLifeOver",
        12 => "subunitAlmostEmpty",
        13 => "subunitEmpty",
        14 => "subunitAlmostFull",
        15 => "subunitFull",
        16 => "subunitNearLimit",
        17 => "subunitAtLimit",
        18 => "subunitOpened",
        19 => "subunitClosed",
        20 => "subunitTurnedOn",
        21 => "subunitTurnedOff",
        22 => "subunitOffline",
        23 => "subunitPowerSaver",
        24 => "subunitWarmingUp",
        25 => "subunitAdded",
        26 => "subunitRemoved",
        27 => "subunitResourceAdded",
        28 => "subunitResourceRemoved",
        29 => "subunitRecoverableFailure",
        30 => "subunitUnrecoverableFailure",
        31 => "subunitRecoverableStorageError",
        32 => "subunitUnrecoverableStorageError",
        33 => "subunitMotorFailure",
        34 => "subunitMemoryExhausted",
        35 => "subunitUnderTemperature",
        36 => "subunitOverTemperature",
        37 => "subunitTimingFailure",
        38 => "subunitThermistorFailure",
        501 => "doorOpen",
        502 => "doorClosed",
        503 => "powerUp",
        504 => "powerDown",
        505 => "printerNMSReset",
        506 => "printerManualReset",
        507 => "printerReadyToPrint",
        801 => "inputMediaTrayMissing",
        802 => "inputMediaSizeChange",
        803 => "inputMediaWeightChange",
        804 => "inputMediaTypeChange",
        805 => "inputMediaColorChange",
        806 => "inputMediaFormPartsChange",
        807 => "inputMediaSupplyLow",
        808 => "inputMediaSupplyEmpty",
        809 => "inputMediaChangeRequest",
        810 => "inputManualInputRequest",
        811 => "inputTrayPositionFailure",
        812 => "inputTrayElevationFailure",
        813 => "inputCannotFeedSizeSelected",
        901 => "outputMediaTrayMissing",
        902 => "outputMediaTrayAlmostFull",
        903 => "outputMediaTrayFull",
        904 => "outputMailboxSelectFailure",
        1001 => "markerFuserUnderTemperature",
        1002 => "markerFuserOverTemperature",
        1003 => "markerFuserTimingFailure",
        1004 => "markerFuserThermistorFailure",
        1005 => "markerAdjustingPrintQuality",
        1101 => "markerTonerEmpty",
        1102 => "markerInkEmpty",
        1103 => "markerPrintRibbonEmpty",
        1104 => "markerTonerAlmostEmpty",
        1105 => "markerInkAlmostEmpty",
        1106 => "markerPrintRibbonAlmostEmpty",
        1107 => "markerWasteTonerReceptacleAlmostFull",
        1108 => "markerWasteInkReceptacleAlmostFull",
        1109 => "markerWasteTonerReceptacleFull",
        1110 => "markerWasteInkReceptacleFull",
        1111 => "markerOpcLifeAlmostOver",
        1112 => "markerOpcLifeOver",
        1113 => "markerDeveloperAlmostEmpty",
        1114 => "markerDeveloperEmpty",
        1115 => "markerTonerCartridgeMissing",
        1301 => "mediaPathMediaTrayMissing",
        1302 => "mediaPathMediaTrayAlmostFull",
        1303 => "mediaPathMediaTrayFull",
        1304 => "mediaPathCannotDuplexMediaSelected",
        1501 => "interpreterMemoryIncrease",
        1502 => "interpreterMemoryDecrease",
        1503 => "interpreterCartridgeAdded",
        1504 => "interpreterCartridgeDeleted",
        1505 => "interpreterResourceAdded",
        1506 => "interpreterResourceDeleted",
        1507 => "interpreterResourceUnavailable",
        1509 => "interpreterComplexPageEncountered",
        1801 => "alertRemovalOfBinaryChangeEntry",
        _ => return format!("code {v}"),
    }
    .into()
}

pub fn supply_kind(v: i64) -> String {
    match v {
        1 => "other",
        2 => "unknown",
        3 => "toner",
        4 => "wasteToner",
        5 => "ink",
        6 => "inkCartridge",
        7 => "inkRibbon",
        8 => "wasteInk",
        9 => "opc",
        10 => "developer",
        11 => "fuserOil",
        12 => "solidWax",
        13 => "ribbonWax",
        14 => "wasteWax",
        15 => "fuser",
        16 => "coronaWire",
        17 => "fuserOilWick",
        18 => "cleanerUnit",
        19 => "fuserCleaningPad",
        20 => "transferUnit",
        21 => "tonerCartridge",
        22 => "fuserOiler",
        23 => "water",
        24 => "wasteWater",
        25 => "glueWaterAdditive",
        26 => "wastePaper",
        27 => "bindingSupply",
        28 => "bandingSupply",
        29 => "stitchingWire",
        30 => "shrinkWrap",
        31 => "paperWrap",
        32 => "staples",
        33 => "inserts",
        34 => "covers",
        _ => return format!("type {v}"),
    }
    .into()
}

/// prtMarkerCounterUnit.
pub fn counter_unit(v: i64) -> String {
    match v {
        3 => "tenThousandthsOfInches",
        4 => "micrometers",
        5 => "characters",
        6 => "lines",
        7 => "impressions",
        8 => "sheets",
        9 => "dotRow",
        11 => "hours",
        16 => "feet",
        17 => "meters",
        _ => return format!("unit {v}"),
    }
    .into()
}

/// prtInputType.
pub fn input_type(v: i64) -> String {
    match v {
        1 => "other",
        2 => "unknown",
        3 => "sheetFeedAutoRemovableTray",
        4 => "sheetFeedAutoNonRemovableTray",
        5 => "sheetFeedManual",
        6 => "continuousRoll",
        7 => "continuousFanFold",
        _ => return format!("type {v}"),
    }
    .into()
}

/// prtOutputType.
pub fn output_type(v: i64) -> String {
    match v {
        1 => "other",
        2 => "unknown",
        3 => "removableBin",
        4 => "unRemovableBin",
        5 => "continuousRollDevice",
        6 => "mailBox",
        7 => "continuousFanFold",
        _ => return format!("type {v}"),
    }
    .into()
}

/// prtMediaPathType.
pub fn media_path_type(v: i64) -> String {
    match v {
        1 => "other",
        2 => "unknown",
        3 => "longEdgeBindingDuplex",
        4 => "shortEdgeBindingDuplex",
        5 => "simplex",
        _ => return format!("type {v}"),
    }
    .into()
}

/// hrDeviceType: the last arc under hrDeviceTypes.
pub fn hr_device_type(arc: u32) -> String {
    match arc {
        1 => "hrDeviceOther",
        2 => "hrDeviceUnknown",
        3 => "hrDeviceProcessor",
        4 => "hrDeviceNetwork",
        5 => "hrDevicePrinter",
        6 => "hrDeviceDiskStorage",
        10 => "hrDeviceVideo",
        11 => "hrDeviceAudio",
        12 => "hrDeviceCoprocessor",
        13 => "hrDeviceKeyboard",
        14 => "hrDeviceModem",
        15 => "hrDeviceParallelPort",
        16 => "hrDevicePointing",
        17 => "hrDeviceSerialPort",
        18 => "hrDeviceTape",
        19 => "hrDeviceClock",
        20 => "hrDeviceVolatileMemory",
        21 => "hrDeviceNonVolatileMemory",
        _ => return format!("hrDeviceType {arc}"),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bits_one_and_two_bytes() {
        assert_eq!(error_bits(&[0x20]), vec!["lowToner"]);
        assert_eq!(error_bits(&[0x04]), vec!["jammed"]);
        assert_eq!(
            error_bits(&[0x01, 0x02]),
            vec!["serviceRequested", "overduePreventMaint"]
        );
        assert_eq!(error_bits(&[0x00, 0x80]), vec!["inputTrayMissing"]);
        assert!(error_bits(&[]).is_empty());
        // A third byte has no defined bits.
        assert!(error_bits(&[0, 0, 0xff]).is_empty());
    }
}
