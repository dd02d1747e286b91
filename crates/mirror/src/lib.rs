//! The registry grammar the mirror answers by, as a library too, so that the core checks a
//! settings' registry host by the very rule the mirror's front applies (one home for it).
pub mod grammar;
pub mod words;
