//! SHA-256 (FIPS 180-4): the digest of every blob the mirror serves. The CPU's SHA extensions when
//! it has them (about 2 GB/s, so hashing a layer costs less than writing it), else portable code.

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

const INITIAL: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// A running SHA-256.
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    buffer: [u8; 64],
    buffered: usize,
    length: u64,
    accelerated: bool,
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    pub fn new() -> Self {
        Self { state: INITIAL, buffer: [0; 64], buffered: 0, length: 0, accelerated: accelerated() }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let take = (64 - self.buffered).min(data.len());
            self.buffer[self.buffered..self.buffered + take].copy_from_slice(&data[..take]);
            self.buffered += take;
            data = &data[take..];
            if self.buffered < 64 {
                return;
            }
            let block = self.buffer;
            self.compress(&block);
            self.buffered = 0;
        }
        let whole = data.len() / 64 * 64;
        if whole > 0 {
            self.compress(&data[..whole]);
        }
        let rest = &data[whole..];
        self.buffer[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    /// The digest, as 32 bytes.
    pub fn finish(mut self) -> [u8; 32] {
        let bits = self.length.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.buffered].copy_from_slice(&self.buffer[..self.buffered]);
        tail[self.buffered] = 0x80;
        let total = if self.buffered < 56 { 64 } else { 128 };
        tail[total - 8..total].copy_from_slice(&bits.to_be_bytes());
        self.compress(&tail[..total]);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    /// `sha256:<hex>`, as registries name content.
    pub fn finish_digest(self) -> String {
        format!("sha256:{}", hex(&self.finish()))
    }

    /// Runs the compression function over `blocks` (a multiple of 64 bytes).
    fn compress(&mut self, blocks: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if self.accelerated {
            // SAFETY: `accelerated` is true only when the CPU reports the SHA, SSSE3 and SSE4.1
            // extensions that `shani::compress` is compiled for.
            unsafe { shani::compress(&mut self.state, blocks) };
            return;
        }
        portable(&mut self.state, blocks);
    }
}

/// The digest of `data`, as `sha256:<hex>`.
pub fn digest_of(data: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(data);
    hash.finish_digest()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn accelerated() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("sha")
            && std::is_x86_feature_detected!("ssse3")
            && std::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn portable(state: &mut [u32; 8], blocks: &[u8]) {
    for block in blocks.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (word, add) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *word = word.wrapping_add(add);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod shani {
    use std::arch::x86_64::*;

    use super::K;

    /// Four rounds with the message words `w` (already in schedule order).
    macro_rules! rounds4 {
        ($abef:ident, $cdgh:ident, $w:expr, $i:expr) => {{
            let k = _mm_set_epi32(K[4 * $i + 3] as i32, K[4 * $i + 2] as i32, K[4 * $i + 1] as i32, K[4 * $i] as i32);
            let t1 = _mm_add_epi32($w, k);
            $cdgh = _mm_sha256rnds2_epu32($cdgh, $abef, t1);
            let t2 = _mm_shuffle_epi32(t1, 0x0E);
            $abef = _mm_sha256rnds2_epu32($abef, $cdgh, t2);
        }};
    }

    /// The next four message words from the previous sixteen.
    macro_rules! schedule {
        ($v0:expr, $v1:expr, $v2:expr, $v3:expr) => {
            _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32($v0, $v1), _mm_alignr_epi8($v3, $v2, 4)), $v3)
        };
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn compress(state: &mut [u32; 8], blocks: &[u8]) {
        let mask = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0Bu64 as i64, 0x0405_0607_0001_0203u64 as i64);
        let pointer = state.as_ptr() as *const __m128i;
        let dcba = _mm_loadu_si128(pointer);
        let efgh = _mm_loadu_si128(pointer.add(1));
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        let mut abef = _mm_alignr_epi8(cdab, efgh, 8);
        let mut cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
        for block in blocks.chunks_exact(64) {
            let (abef_saved, cdgh_saved) = (abef, cdgh);
            let data = block.as_ptr() as *const __m128i;
            let mut w0 = _mm_shuffle_epi8(_mm_loadu_si128(data), mask);
            let mut w1 = _mm_shuffle_epi8(_mm_loadu_si128(data.add(1)), mask);
            let mut w2 = _mm_shuffle_epi8(_mm_loadu_si128(data.add(2)), mask);
            let mut w3 = _mm_shuffle_epi8(_mm_loadu_si128(data.add(3)), mask);
            let mut w4;
            rounds4!(abef, cdgh, w0, 0);
            rounds4!(abef, cdgh, w1, 1);
            rounds4!(abef, cdgh, w2, 2);
            rounds4!(abef, cdgh, w3, 3);
            w4 = schedule!(w0, w1, w2, w3);
            rounds4!(abef, cdgh, w4, 4);
            w0 = schedule!(w1, w2, w3, w4);
            rounds4!(abef, cdgh, w0, 5);
            w1 = schedule!(w2, w3, w4, w0);
            rounds4!(abef, cdgh, w1, 6);
            w2 = schedule!(w3, w4, w0, w1);
            rounds4!(abef, cdgh, w2, 7);
            w3 = schedule!(w4, w0, w1, w2);
            rounds4!(abef, cdgh, w3, 8);
            w4 = schedule!(w0, w1, w2, w3);
            rounds4!(abef, cdgh, w4, 9);
            w0 = schedule!(w1, w2, w3, w4);
            rounds4!(abef, cdgh, w0, 10);
            w1 = schedule!(w2, w3, w4, w0);
            rounds4!(abef, cdgh, w1, 11);
            w2 = schedule!(w3, w4, w0, w1);
            rounds4!(abef, cdgh, w2, 12);
            w3 = schedule!(w4, w0, w1, w2);
            rounds4!(abef, cdgh, w3, 13);
            w4 = schedule!(w0, w1, w2, w3);
            rounds4!(abef, cdgh, w4, 14);
            w0 = schedule!(w1, w2, w3, w4);
            rounds4!(abef, cdgh, w0, 15);
            abef = _mm_add_epi32(abef, abef_saved);
            cdgh = _mm_add_epi32(cdgh, cdgh_saved);
        }
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        let pointer = state.as_mut_ptr() as *mut __m128i;
        _mm_storeu_si128(pointer, dcba);
        _mm_storeu_si128(pointer.add(1), hgef);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(data: &[u8]) -> (String, String) {
        let mut fast = Sha256::new();
        fast.update(data);
        let mut slow = Sha256::new();
        slow.accelerated = false;
        slow.update(data);
        (fast.finish_digest(), slow.finish_digest())
    }

    #[test]
    fn known_answers() {
        // FIPS 180-4's examples and `printf … | sha256sum`.
        let cases: [(&[u8], &str); 3] = [
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
        ];
        for (input, expected) in cases {
            let (fast, slow) = both(input);
            assert_eq!(fast, format!("sha256:{expected}"));
            assert_eq!(slow, fast);
        }
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(digest_of(&million_a), "sha256:cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }

    #[test]
    fn pieces_of_any_size_give_the_whole_digest() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let whole = digest_of(&data);
        for step in [1, 3, 63, 64, 65, 127, 1000] {
            let mut hash = Sha256::new();
            for piece in data.chunks(step) {
                hash.update(piece);
            }
            assert_eq!(hash.finish_digest(), whole, "pieces of {step}");
        }
        for len in 0..200 {
            let (fast, slow) = both(&data[..len]);
            assert_eq!(fast, slow, "length {len}");
        }
    }
}
