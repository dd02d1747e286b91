//! `assemble build`'s flags that the build session serves, spelled as buildx spells them; the core
//! reads and checks their values (build/session_flags.rs, build/outputs.rs).
use clap::Args;

#[derive(Args, Debug, Default)]
pub struct SessionArgs {
    /// A secret for RUN --mount=type=secret: id=ID[,src=FILE|,env=VARIABLE] (never stored in the image or logs); repeat for more
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    pub secrets: Vec<String>,
    /// An ssh agent for RUN --mount=type=ssh: default (your SSH_AUTH_SOCK), or ID=SOCKET or ID=KEYFILE[,KEYFILE…]; repeat for more
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET|KEY]")]
    pub ssh: Vec<String>,
    /// Where the result goes: DIR, - (a tar on stdout), type=local,dest=DIR, type=tar|oci|docker,dest=FILE, type=oci|docker,dest=DIR,tar=false (an OCI layout folder), type=image|registry[,name=…,push=true]; repeat for more
    #[arg(short = 'o', long = "output", value_name = "[type=TYPE,]dest=PATH")]
    pub outputs: Vec<String>,
}
