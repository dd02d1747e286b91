//! `assemble build`'s flags for what travels with the solve (caches, labels, attestations,
//! network, named contexts) and the files a build leaves, spelled as buildx spells them. The core
//! checks them (build/attrs.rs, build/cache_options.rs); here they are only read.
use std::path::PathBuf;

use assemble_core::build::{attrs::SolveInput, step_options::StepInput};
use clap::Args;

#[derive(Args, Debug, Default)]
pub struct SolveFlags {
    /// Import build cache: type=registry,ref=REF (or just REF), or type=local,src=DIR[,tag=TAG|,digest=D]
    /// (a folder written by --cache-to type=local or buildx; a missing one is a warning, as in
    /// buildx); repeat for more
    #[arg(long = "cache-from", value_name = "CACHE")]
    pub cache_from: Vec<String>,
    /// Export build cache: type=registry,ref=REF or type=local,dest=DIR[,tag=TAG], each with
    /// [,mode=min|max][,image-manifest=true|false][,oci-mediatypes=true|false]; or type=inline
    /// (into the image pushed or loaded)
    #[arg(long = "cache-to", value_name = "CACHE")]
    pub cache_to: Vec<String>,
    /// An image label, KEY=VALUE; repeat for more
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Provenance attestation: true, false, or mode=min|max[,…]. Default, as buildx:
    /// mode=min,inline-only=true (pushed images carry it; --load leaves it out); --provenance=false
    /// (or BUILDX_NO_DEFAULT_ATTESTATIONS=1) turns it off
    #[arg(long, value_name = "VALUE")]
    pub provenance: Option<String>,
    /// SBOM attestation: true, false, or generator=IMAGE[,…]; the default scanner
    /// (docker/buildkit-syft-scanner) must be pullable by the backend
    #[arg(long, value_name = "VALUE")]
    pub sbom: Option<String>,
    /// An attestation, type=provenance[,mode=min|max] or type=sbom[,generator=IMAGE]; repeat for more
    #[arg(long = "attest", value_name = "ATTRS")]
    pub attests: Vec<String>,
    /// Take every base image from its registry, fresh. Without it, a FROM of an image the engine
    /// already has (docker images) takes the engine's image, as docker build does: when a name is
    /// both in the engine and in a registry, the engine's wins
    #[arg(long)]
    pub pull: bool,
    /// The network RUN steps get: default, none, or host (host needs `backend start --allow-network-host`)
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,
    /// An extra /etc/hosts line for RUN steps, HOST:IP (HOST=IP for IPv6); repeat for more
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// A named context, NAME=VALUE: a folder, docker-image://REF, oci-layout://PATH[:TAG][@DIGEST], or a git/https URL; repeat for more
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// The size of /dev/shm for RUN steps, such as 128m or 1g (powers of 1024, as docker)
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// A resource limit for RUN steps, NAME=SOFT[:HARD] (such as nofile=1024:2048); repeat for more
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// The cgroup parent of RUN steps
    #[arg(long = "cgroup-parent", value_name = "CGROUP")]
    pub cgroup_parent: Option<String>,
    /// Build this stage without the cache (the others may use it); repeat or use commas
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// An annotation of the image, [TYPE[PLATFORM]:]KEY=VALUE, TYPE one of manifest (the default),
    /// manifest-descriptor, index, index-descriptor; repeat for more
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Write the image ID (its config digest, else its digest) to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Write the build's result metadata (digests, names, buildx.build.ref) to this JSON file
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Show no progress; print only the image ID on stdout
    #[arg(short = 'q', long, conflicts_with = "progress")]
    pub quiet: bool,
    /// Ask the Dockerfile frontend instead of building: build (the default), check (lint the
    /// Dockerfile), outline (its arguments and secrets), targets (its stages); with
    /// [,format=json][,ignorestatus=true]
    #[arg(long, value_name = "NAME")]
    pub call: Option<String>,
    /// Shorthand for --call check
    #[arg(long, conflicts_with = "call")]
    pub check: bool,
}

impl SolveFlags {
    /// `--call` as typed (`--check` is `--call check`).
    pub fn call(&self) -> Option<String> {
        if self.check {
            Some("check".into())
        } else {
            self.call.clone()
        }
    }

    /// The core's input, as typed.
    pub fn input(&self) -> SolveInput {
        SolveInput {
            cache_from: self.cache_from.clone(),
            cache_to: self.cache_to.clone(),
            labels: self.labels.clone(),
            provenance: self.provenance.clone(),
            sbom: self.sbom.clone(),
            attests: self.attests.clone(),
            pull: self.pull,
            network: self.network.clone(),
            add_hosts: self.add_hosts.clone(),
            build_contexts: self.build_contexts.clone(),
            steps: StepInput {
                shm_size: self.shm_size.clone(),
                ulimits: self.ulimits.clone(),
                cgroup_parent: self.cgroup_parent.clone(),
                no_cache_filter: self.no_cache_filter.clone(),
                annotations: self.annotations.clone(),
            },
        }
    }
}
