//! What a tabular generator checkpoint needs to be served, and nothing about how it was
//! trained: the target MLP, the generator network, and the Model Generator `arch` names
//! it answers. The trainer's experiment config embeds this as its `[architecture]`
//! section; checkpoints store it; serving reads only it.

use hyper_core::{GeneratorConfig, Metadata};
use serde::{Deserialize, Serialize};
use target_models::mlp::MlpConfig;

/// The checkpoint `kind` of a tabular generator (checked on load).
pub const TABULAR_CHECKPOINT_KIND: &str = "tabular-generator";

/// Architecture section of a tabular experiment config / generator checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TabularArchitecture {
    /// The Model Generator `arch` values this checkpoint serves. The `profile` backend
    /// names a size by row count (`mlp_small` < 1k rows, `mlp_base` < 50k, `mlp_large`);
    /// by default one meta-trained MLP shape (`model`) serves all three names — the
    /// documented mapping. A checkpoint listing fewer refuses the others by name.
    pub serves: Vec<String>,
    pub model: MlpConfig,
    pub generator: GeneratorConfig,
}

impl Default for TabularArchitecture {
    fn default() -> Self {
        Self {
            serves: ["mlp_small", "mlp_base", "mlp_large"]
                .map(String::from)
                .to_vec(),
            model: MlpConfig::default(),
            generator: GeneratorConfig::default(),
        }
    }
}

impl TabularArchitecture {
    /// Schema checks that do not need data: known arch names, a non-empty MLP.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.serves.is_empty(),
            "architecture.serves: needs at least one arch name"
        );
        for a in &self.serves {
            anyhow::ensure!(
                a.starts_with("mlp_") && hyper_core::metadata::ARCHS.contains(&a.as_str()),
                "architecture.serves: `{a}` is not a tabular MLP arch; known: mlp_small, mlp_base, mlp_large"
            );
        }
        anyhow::ensure!(
            !self.model.hidden.is_empty(),
            "architecture.model.hidden needs at least one layer"
        );
        Ok(())
    }

    /// Ok when this checkpoint can serve `meta.arch`; else an error naming both.
    pub fn check_serves(&self, meta: &Metadata) -> anyhow::Result<()> {
        if self.serves.contains(&meta.arch) {
            return Ok(());
        }
        anyhow::bail!(
            "metadata asks for arch `{}` (task `{}`), but this generator checkpoint serves only {} (an MLP with hidden layers {:?})",
            meta.arch,
            meta.task,
            self.serves
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            self.model.hidden
        )
    }

    /// This section as a TOML table (for comparing a checkpoint with a config).
    pub fn to_table(&self) -> anyhow::Result<toml::Table> {
        Ok(toml::Table::try_from(self)?)
    }
}

/// The `[config.architecture]` section of a loaded checkpoint's header (what serving
/// needs), or an error naming the checkpoint.
pub fn architecture_from_header<T: serde::de::DeserializeOwned>(
    header: &hyper_core::checkpoint::CheckpointHeader,
    stem: &std::path::Path,
) -> anyhow::Result<T> {
    use anyhow::Context;
    header
        .config
        .get("architecture")
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: checkpoint header lacks [config.architecture]",
                stem.display()
            )
        })?
        .try_into()
        .with_context(|| format!("{}: [config.architecture] does not parse", stem.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(arch: &str) -> Metadata {
        Metadata {
            arch: arch.into(),
            ..test_support::tabular_meta(4, 3)
        }
    }

    #[test]
    fn a_file_states_only_what_it_changes() {
        let a: TabularArchitecture = toml::from_str("[model]\nhidden = [8]\n").unwrap();
        assert_eq!(a.model.hidden, vec![8]);
        assert_eq!(a.model.activation, MlpConfig::default().activation);
        assert_eq!(a.generator, GeneratorConfig::default());
        assert_eq!(a.serves.len(), 3);
        let e = toml::from_str::<TabularArchitecture>("servs = []").unwrap_err();
        assert!(e.to_string().contains("servs"), "{e}");
    }

    #[test]
    fn refuses_an_arch_it_does_not_serve_naming_both() {
        let a = TabularArchitecture {
            serves: vec!["mlp_small".into()],
            ..Default::default()
        };
        a.check_serves(&meta("mlp_small")).unwrap();
        let e = a.check_serves(&meta("mlp_large")).unwrap_err().to_string();
        assert!(
            e.contains("`mlp_large`") && e.contains("`mlp_small`"),
            "{e}"
        );
        let e = TabularArchitecture::default()
            .check_serves(&meta("resnet50"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`resnet50`") && e.contains("`mlp_base`"), "{e}");
    }

    #[test]
    fn serves_only_mlp_names() {
        let a = TabularArchitecture {
            serves: vec!["resnet50".into()],
            ..Default::default()
        };
        assert!(a.validate().unwrap_err().to_string().contains("resnet50"));
    }
}
