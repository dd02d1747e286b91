//! Property tests of the two parsers that read what people type and write: the port parser and
//! the settings file loader. Neither may panic; every refusal must be a sentence that says what to do.
use std::path::PathBuf;

use assemble_core::{settings, PortSet};
use proptest::prelude::*;

fn scratch_file(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("assemble-props-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join("settings.json")
}

/// What people type: digits, commas, signs, spaces, letters, and the odd long number.
fn typed_port_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,7}",
        "[0-9, ]{0,16}",
        "[-+0-9a-z,. ]{0,12}",
        any::<u32>().prop_map(|n| n.to_string()),
        Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_port_parser_never_panics_and_explains_every_refusal(values in prop::collection::vec(typed_port_value(), 0..4)) {
        match PortSet::parse(&values) {
            Ok(set) if values.is_empty() => prop_assert_eq!(set.iter().collect::<Vec<_>>(), vec![5000]),
            Ok(set) => {
                // Every port came from the input, and nothing but a lone 0 gives none.
                for port in set.iter() {
                    prop_assert!(port >= 1);
                    prop_assert!(values.iter().any(|v| v.split(',').any(|item| item.trim().parse::<u16>() == Ok(port))));
                }
                if set.is_empty() {
                    prop_assert!(values.iter().flat_map(|v| v.split(',')).all(|item| item.trim().parse::<u16>() == Ok(0)));
                }
            }
            Err(err) => {
                let sentence = err.to_string();
                prop_assert!(sentence.starts_with("--allow-host-port"), "{}", sentence);
                prop_assert!(sentence.contains("give") || sentence.contains("ports go from"), "{}", sentence);
            }
        }
    }

    #[test]
    fn valid_port_lists_parse_to_exactly_their_ports(ports in prop::collection::btree_set(1u16..=65535, 1..8), split in 1usize..4) {
        let all: Vec<String> = ports.iter().map(u16::to_string).collect();
        let values: Vec<String> = all.chunks(split).map(|chunk| chunk.join(",")).collect();
        let parsed = PortSet::parse(&values).expect("valid ports parse");
        prop_assert_eq!(parsed.iter().collect::<Vec<_>>(), ports.iter().copied().collect::<Vec<_>>());
        prop_assert_eq!(PortSet::from_label(&parsed.to_label()), Some(parsed));
    }

    #[test]
    fn the_settings_loader_never_panics_and_never_loses_a_file(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let file = scratch_file("bytes");
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &bytes).unwrap();
        let loaded = settings::load_from(&file);
        match loaded.warning {
            None => {
                prop_assert!(loaded.settings.validate().is_ok());
                prop_assert_eq!(std::fs::read(&file).unwrap(), bytes);
            }
            Some(warning) => {
                // The defaults, written out: port 5000, the automatic cache, the default image, docker's context.
                let defaults = settings::Settings {
            ports: vec![5000],
            cache: settings::CacheSetting::Auto,
            image: None,
            context: None,
            use_builder: false,
            cache_limit: None,
            base_images: Default::default(),
            security: Default::default(),
            allow_network_host: false,
            local_images: true,
            local_image_registries: Vec::new(),
        };
                prop_assert_eq!(loaded.settings, defaults);
                prop_assert!(warning.contains("Using the default settings"), "{}", warning);
                // The bad file is kept aside, byte for byte.
                let aside: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().flatten().collect();
                prop_assert_eq!(aside.len(), 1);
                prop_assert_eq!(std::fs::read(aside[0].path()).unwrap(), bytes);
            }
        }
    }

    #[test]
    fn settings_that_save_load_back_unchanged(ports in prop::collection::vec(1u16..=65535, 0..6), volume in "[a-z][a-z0-9_.-]{1,20}", image in proptest::option::of("[a-z]{1,10}(:[a-z0-9][a-z0-9.]{0,7})?"), context in proptest::option::of("[a-z0-9][a-z0-9_.+-]{1,20}"), use_builder in proptest::bool::ANY) {
        let file = scratch_file("roundtrip");
        let wanted = settings::Settings { ports, cache: settings::CacheSetting::Named(volume), image, context, use_builder, cache_limit: None, base_images: Default::default(), security: Default::default(), allow_network_host: use_builder, local_images: use_builder, local_image_registries: Vec::new() };
        settings::save_to(&file, &wanted).expect("valid settings save");
        let loaded = settings::load_from(&file);
        prop_assert!(loaded.warning.is_none());
        let mut normalised = wanted.ports.clone();
        normalised.sort_unstable();
        normalised.dedup();
        prop_assert_eq!(loaded.settings.ports, normalised);
        prop_assert_eq!(loaded.settings.cache, wanted.cache);
        prop_assert_eq!(loaded.settings.image, wanted.image);
        prop_assert_eq!(loaded.settings.context, wanted.context);
    }
}
