//! BMS placeholder
