//! Native histogram chunks: integer histograms (encoding 2) and float histograms
//! (encoding 3). Both start with a 2-byte sample count, a flags byte whose top two bits
//! are the counter-reset header, and the bucket layout written once.

use hypnos_model::{CounterResetHint, FloatHistogram, Histogram, Span, is_stale_nan};

use super::bstream::{BitReader, BitWriter};
use super::varbit::{put_varbit_int, put_varbit_uint, read_varbit_int, read_varbit_uint};
use super::xor::{xor_read, xor_write};
use crate::error::DecodeError;

/// The counter-reset header of a histogram chunk (top two bits of byte 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CounterResetHeader {
    #[default]
    Unknown,
    CounterReset,
    NotCounterReset,
    Gauge,
}

impl CounterResetHeader {
    pub fn from_byte(b: u8) -> Self {
        match b >> 6 {
            0b10 => CounterResetHeader::CounterReset,
            0b01 => CounterResetHeader::NotCounterReset,
            0b11 => CounterResetHeader::Gauge,
            _ => CounterResetHeader::Unknown,
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            CounterResetHeader::Unknown => 0,
            CounterResetHeader::CounterReset => 0b1000_0000,
            CounterResetHeader::NotCounterReset => 0b0100_0000,
            CounterResetHeader::Gauge => 0b1100_0000,
        }
    }

    /// The hint a sample gets when read: the header for the first sample of a chunk,
    /// "not a reset" for later ones, gauge throughout for gauge chunks.
    pub fn hint_for(self, read: u16) -> CounterResetHint {
        match self {
            CounterResetHeader::Gauge => CounterResetHint::Gauge,
            _ if read > 1 => CounterResetHint::NotCounterReset,
            CounterResetHeader::CounterReset => CounterResetHint::CounterReset,
            _ => CounterResetHint::Unknown,
        }
    }
}

/// Schema range of exponential native histograms that Prometheus 2.42 reads and writes.
pub const MIN_SCHEMA: i32 = -4;
pub const MAX_SCHEMA: i32 = 8;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    pub schema: i32,
    pub zero_threshold: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
}

impl Layout {
    fn of_histogram(h: &Histogram) -> Layout {
        Layout {
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            positive_spans: h.positive_spans.clone(),
            negative_spans: h.negative_spans.clone(),
        }
    }

    fn of_float(h: &FloatHistogram) -> Layout {
        Layout {
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            positive_spans: h.positive_spans.clone(),
            negative_spans: h.negative_spans.clone(),
        }
    }

    fn same_as(&self, schema: i32, zt: f64, pos: &[Span], neg: &[Span]) -> bool {
        self.schema == schema
            && self.zero_threshold.to_bits() == zt.to_bits()
            && self.positive_spans == pos
            && self.negative_spans == neg
    }
}

fn count_spans(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.length as usize).sum()
}

fn write_zero_threshold(w: &mut BitWriter, zt: f64) {
    if zt == 0.0 && zt.is_sign_positive() {
        w.write_byte(0);
        return;
    }
    // zt == 0.5 * 2^exp exactly, for exp in [-242, 11]: one byte exp+243.
    if zt > 0.0 && zt.is_finite() {
        let bits = zt.to_bits();
        let mantissa = bits & ((1u64 << 52) - 1);
        let biased = ((bits >> 52) & 0x7ff) as i32;
        if mantissa == 0 && biased != 0 {
            let exp = biased - 1023 + 1;
            if (-242..=11).contains(&exp) {
                w.write_byte((exp + 243) as u8);
                return;
            }
        }
    }
    w.write_byte(255);
    w.write_bits(zt.to_bits(), 64);
}

fn read_zero_threshold(r: &mut BitReader<'_>) -> Result<f64, DecodeError> {
    match r.read_byte()? {
        0 => Ok(0.0),
        255 => Ok(f64::from_bits(r.read_bits(64)?)),
        b => Ok(0.5 * f64::powi(2.0, i32::from(b) - 243)),
    }
}

fn write_spans(w: &mut BitWriter, spans: &[Span]) {
    put_varbit_uint(w, spans.len() as u64);
    for s in spans {
        put_varbit_uint(w, u64::from(s.length));
        put_varbit_int(w, i64::from(s.offset));
    }
}

fn read_spans(r: &mut BitReader<'_>) -> Result<Vec<Span>, DecodeError> {
    let n = read_varbit_uint(r)?;
    // Each span takes at least two bits: refuse counts the data cannot hold.
    if n > (r.bits_left() / 2) as u64 {
        return Err(r.err(format!(
            "histogram layout claims {n} spans, more than the chunk can hold"
        )));
    }
    let mut spans = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let length = read_varbit_uint(r)?;
        let offset = read_varbit_int(r)?;
        let length = u32::try_from(length).map_err(|_| r.err(format!("span length {length} out of range")))?;
        let offset = i32::try_from(offset).map_err(|_| r.err(format!("span offset {offset} out of range")))?;
        spans.push(Span { offset, length });
    }
    Ok(spans)
}

fn write_layout(w: &mut BitWriter, l: &Layout) {
    write_zero_threshold(w, l.zero_threshold);
    put_varbit_int(w, i64::from(l.schema));
    write_spans(w, &l.positive_spans);
    write_spans(w, &l.negative_spans);
}

fn read_layout(r: &mut BitReader<'_>) -> Result<Layout, DecodeError> {
    let zero_threshold = read_zero_threshold(r)?;
    let schema = read_varbit_int(r)?;
    if !(i64::from(MIN_SCHEMA)..=i64::from(MAX_SCHEMA)).contains(&schema) {
        return Err(r.err(format!("unsupported histogram schema {schema}")));
    }
    let positive_spans = read_spans(r)?;
    let negative_spans = read_spans(r)?;
    let total = count_spans(&positive_spans).saturating_add(count_spans(&negative_spans));
    // Every bucket of the first sample takes at least one bit.
    if total > r.bits_left() {
        return Err(r.err(format!(
            "histogram layout claims {total} buckets, more than the chunk can hold"
        )));
    }
    Ok(Layout {
        schema: schema as i32,
        zero_threshold,
        positive_spans,
        negative_spans,
    })
}

fn header_of(data: &[u8], what: &str) -> Result<(u16, CounterResetHeader), DecodeError> {
    if data.len() < 3 {
        return Err(DecodeError::new(
            0,
            format!("{what} chunk shorter than its 3-byte header"),
        ));
    }
    Ok((
        u16::from_be_bytes([data[0], data[1]]),
        CounterResetHeader::from_byte(data[2]),
    ))
}

fn set_count(w: &mut BitWriter, num: u16) {
    let n = num.to_be_bytes();
    let b = w.bytes_mut();
    b[0] = n[0];
    b[1] = n[1];
}

// ---------------------------------------------------------------------------------------
// Integer histograms (encoding 2)

/// Builds one integer histogram chunk. All samples of a chunk share one layout; the
/// caller checks [`HistogramAppender::can_append`] and cuts a new chunk otherwise.
#[derive(Clone, Debug)]
pub struct HistogramAppender {
    w: BitWriter,
    num: u16,
    layout: Layout,
    t: i64,
    cnt: u64,
    zcnt: u64,
    t_delta: i64,
    cnt_delta: i64,
    zcnt_delta: i64,
    pbuckets: Vec<i64>,
    nbuckets: Vec<i64>,
    pdeltas: Vec<i64>,
    ndeltas: Vec<i64>,
    sum: f64,
    leading: u8,
    trailing: u8,
}

impl HistogramAppender {
    pub fn new(header: CounterResetHeader) -> Self {
        HistogramAppender {
            w: BitWriter::with_header(&[0, 0, header.to_byte()]),
            num: 0,
            layout: Layout::default(),
            t: 0,
            cnt: 0,
            zcnt: 0,
            t_delta: 0,
            cnt_delta: 0,
            zcnt_delta: 0,
            pbuckets: Vec::new(),
            nbuckets: Vec::new(),
            pdeltas: Vec::new(),
            ndeltas: Vec::new(),
            sum: 0.0,
            leading: 0xff,
            trailing: 0,
        }
    }

    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    pub fn header(&self) -> CounterResetHeader {
        CounterResetHeader::from_byte(self.w.bytes()[2])
    }

    /// Whether `h` can go into this chunk: same layout, no counter reset (for counters),
    /// and the previous sample not a staleness marker. Stale samples always fit.
    pub fn can_append(&self, h: &Histogram) -> bool {
        if self.num == 0 || is_stale_nan(h.sum) {
            return true;
        }
        if is_stale_nan(self.sum) {
            return false;
        }
        let gauge = self.header() == CounterResetHeader::Gauge;
        if gauge != (h.counter_reset_hint == CounterResetHint::Gauge) {
            return false;
        }
        if !self
            .layout
            .same_as(h.schema, h.zero_threshold, &h.positive_spans, &h.negative_spans)
        {
            return false;
        }
        if gauge {
            return true;
        }
        !self.is_counter_reset(h)
    }

    /// Whether `h` is a counter reset relative to the last sample (same layout assumed).
    pub fn is_counter_reset(&self, h: &Histogram) -> bool {
        if h.counter_reset_hint == CounterResetHint::CounterReset || h.count < self.cnt || h.zero_count < self.zcnt {
            return true;
        }
        fn decreased(old: &[i64], new: &[i64]) -> bool {
            let (mut a, mut b) = (0i64, 0i64);
            old.iter().zip(new).any(|(o, n)| {
                a = a.wrapping_add(*o);
                b = b.wrapping_add(*n);
                b < a
            })
        }
        h.schema != self.layout.schema
            || h.positive_spans != self.layout.positive_spans
            || h.negative_spans != self.layout.negative_spans
            || decreased(&self.pbuckets, &h.positive_buckets)
            || decreased(&self.nbuckets, &h.negative_buckets)
    }

    /// Appends; `h` must satisfy [`Self::can_append`] and have as many buckets as its spans say.
    pub fn append(&mut self, t: i64, h: &Histogram) {
        let stale = is_stale_nan(h.sum);
        let empty = Histogram {
            sum: h.sum,
            ..Default::default()
        };
        let h = if stale { &empty } else { h };
        let mut t_delta = 0;
        let mut cnt_delta = 0;
        let mut zcnt_delta = 0;
        if self.num == 0 {
            self.layout = Layout::of_histogram(h);
            write_layout(&mut self.w, &self.layout);
            let np = count_spans(&h.positive_spans);
            let nn = count_spans(&h.negative_spans);
            self.pbuckets = vec![0; np];
            self.nbuckets = vec![0; nn];
            self.pdeltas = vec![0; np];
            self.ndeltas = vec![0; nn];
            put_varbit_int(&mut self.w, t);
            put_varbit_uint(&mut self.w, h.count);
            put_varbit_uint(&mut self.w, h.zero_count);
            self.w.write_bits(h.sum.to_bits(), 64);
            for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
                put_varbit_int(&mut self.w, b);
            }
        } else {
            t_delta = t.wrapping_sub(self.t);
            cnt_delta = (h.count as i64).wrapping_sub(self.cnt as i64);
            zcnt_delta = (h.zero_count as i64).wrapping_sub(self.zcnt as i64);
            let mut cnt_dod = cnt_delta.wrapping_sub(self.cnt_delta);
            let mut zcnt_dod = zcnt_delta.wrapping_sub(self.zcnt_delta);
            if stale {
                cnt_dod = 0;
                zcnt_dod = 0;
            }
            put_varbit_int(&mut self.w, t_delta.wrapping_sub(self.t_delta));
            put_varbit_int(&mut self.w, cnt_dod);
            put_varbit_int(&mut self.w, zcnt_dod);
            xor_write(&mut self.w, h.sum, self.sum, &mut self.leading, &mut self.trailing);
            for (i, &b) in h.positive_buckets.iter().enumerate().take(self.pbuckets.len()) {
                let delta = b.wrapping_sub(self.pbuckets[i]);
                put_varbit_int(&mut self.w, delta.wrapping_sub(self.pdeltas[i]));
                self.pdeltas[i] = delta;
            }
            for (i, &b) in h.negative_buckets.iter().enumerate().take(self.nbuckets.len()) {
                let delta = b.wrapping_sub(self.nbuckets[i]);
                put_varbit_int(&mut self.w, delta.wrapping_sub(self.ndeltas[i]));
                self.ndeltas[i] = delta;
            }
        }
        self.num = self.num.wrapping_add(1);
        set_count(&mut self.w, self.num);
        self.t = t;
        if stale {
            // Keep the state the decoder keeps: a stale sample changes neither counts nor buckets.
            self.t_delta = t_delta;
            self.cnt_delta = 0;
            self.zcnt_delta = 0;
            self.sum = h.sum;
            return;
        }
        self.cnt = h.count;
        self.zcnt = h.zero_count;
        self.t_delta = t_delta;
        self.cnt_delta = cnt_delta;
        self.zcnt_delta = zcnt_delta;
        for (d, s) in self.pbuckets.iter_mut().zip(&h.positive_buckets) {
            *d = *s;
        }
        for (d, s) in self.nbuckets.iter_mut().zip(&h.negative_buckets) {
            *d = *s;
        }
        self.sum = h.sum;
    }
}

/// Decodes an integer histogram chunk.
#[derive(Clone, Debug)]
pub struct HistogramIterator<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    header: CounterResetHeader,
    layout: Layout,
    t: i64,
    cnt: u64,
    zcnt: u64,
    t_delta: i64,
    cnt_delta: i64,
    zcnt_delta: i64,
    pbuckets: Vec<i64>,
    nbuckets: Vec<i64>,
    pdeltas: Vec<i64>,
    ndeltas: Vec<i64>,
    sum: f64,
    leading: u8,
    trailing: u8,
}

impl<'a> HistogramIterator<'a> {
    pub fn new(data: &'a [u8]) -> Result<Self, DecodeError> {
        let (total, header) = header_of(data, "histogram")?;
        Ok(HistogramIterator {
            r: BitReader::new(&data[3..], 3),
            total,
            read: 0,
            header,
            layout: Layout::default(),
            t: 0,
            cnt: 0,
            zcnt: 0,
            t_delta: 0,
            cnt_delta: 0,
            zcnt_delta: 0,
            pbuckets: Vec::new(),
            nbuckets: Vec::new(),
            pdeltas: Vec::new(),
            ndeltas: Vec::new(),
            sum: 0.0,
            leading: 0,
            trailing: 0,
        })
    }

    pub fn num_samples(&self) -> usize {
        usize::from(self.total)
    }

    pub fn header(&self) -> CounterResetHeader {
        self.header
    }

    pub fn next_histogram(&mut self) -> Result<Option<(i64, Histogram)>, DecodeError> {
        if self.read >= self.total {
            return Ok(None);
        }
        let r = &mut self.r;
        if self.read == 0 {
            self.layout = read_layout(r)?;
            let np = count_spans(&self.layout.positive_spans);
            let nn = count_spans(&self.layout.negative_spans);
            self.pbuckets = vec![0; np];
            self.nbuckets = vec![0; nn];
            self.pdeltas = vec![0; np];
            self.ndeltas = vec![0; nn];
            self.t = read_varbit_int(r)?;
            self.cnt = read_varbit_uint(r)?;
            self.zcnt = read_varbit_uint(r)?;
            self.sum = f64::from_bits(r.read_bits(64)?);
            for b in self.pbuckets.iter_mut().chain(self.nbuckets.iter_mut()) {
                *b = read_varbit_int(r)?;
            }
        } else {
            let t_dod = read_varbit_int(r)?;
            self.t_delta = self.t_delta.wrapping_add(t_dod);
            self.t = self.t.wrapping_add(self.t_delta);
            let cnt_dod = read_varbit_int(r)?;
            self.cnt_delta = self.cnt_delta.wrapping_add(cnt_dod);
            self.cnt = (self.cnt as i64).wrapping_add(self.cnt_delta) as u64;
            let zcnt_dod = read_varbit_int(r)?;
            self.zcnt_delta = self.zcnt_delta.wrapping_add(zcnt_dod);
            self.zcnt = (self.zcnt as i64).wrapping_add(self.zcnt_delta) as u64;
            xor_read(r, &mut self.sum, &mut self.leading, &mut self.trailing)?;
            if !is_stale_nan(self.sum) {
                for (b, d) in self.pbuckets.iter_mut().zip(self.pdeltas.iter_mut()) {
                    *d = d.wrapping_add(read_varbit_int(r)?);
                    *b = b.wrapping_add(*d);
                }
                for (b, d) in self.nbuckets.iter_mut().zip(self.ndeltas.iter_mut()) {
                    *d = d.wrapping_add(read_varbit_int(r)?);
                    *b = b.wrapping_add(*d);
                }
            }
        }
        self.read += 1;
        if is_stale_nan(self.sum) {
            return Ok(Some((
                self.t,
                Histogram {
                    sum: self.sum,
                    ..Default::default()
                },
            )));
        }
        Ok(Some((
            self.t,
            Histogram {
                counter_reset_hint: self.header.hint_for(self.read),
                schema: self.layout.schema,
                zero_threshold: self.layout.zero_threshold,
                zero_count: self.zcnt,
                count: self.cnt,
                sum: self.sum,
                positive_spans: self.layout.positive_spans.clone(),
                negative_spans: self.layout.negative_spans.clone(),
                positive_buckets: self.pbuckets.clone(),
                negative_buckets: self.nbuckets.clone(),
                custom_values: Vec::new(),
            },
        )))
    }

    pub fn timestamp(&self) -> i64 {
        self.t
    }
}

// ---------------------------------------------------------------------------------------
// Float histograms (encoding 3)

#[derive(Clone, Copy, Debug)]
struct XorValue {
    value: f64,
    leading: u8,
    trailing: u8,
}

impl XorValue {
    fn new(value: f64, leading: u8) -> Self {
        XorValue {
            value,
            leading,
            trailing: 0,
        }
    }
    fn write(&mut self, w: &mut BitWriter, v: f64) {
        xor_write(w, v, self.value, &mut self.leading, &mut self.trailing);
        self.value = v;
    }
    fn read(&mut self, r: &mut BitReader<'_>) -> Result<(), DecodeError> {
        xor_read(r, &mut self.value, &mut self.leading, &mut self.trailing)
    }
}

/// Builds one float histogram chunk.
#[derive(Clone, Debug)]
pub struct FloatHistogramAppender {
    w: BitWriter,
    num: u16,
    layout: Layout,
    t: i64,
    t_delta: i64,
    cnt: XorValue,
    zcnt: XorValue,
    sum: XorValue,
    pbuckets: Vec<XorValue>,
    nbuckets: Vec<XorValue>,
}

impl FloatHistogramAppender {
    pub fn new(header: CounterResetHeader) -> Self {
        FloatHistogramAppender {
            w: BitWriter::with_header(&[0, 0, header.to_byte()]),
            num: 0,
            layout: Layout::default(),
            t: 0,
            t_delta: 0,
            cnt: XorValue::new(0.0, 0xff),
            zcnt: XorValue::new(0.0, 0xff),
            sum: XorValue::new(0.0, 0xff),
            pbuckets: Vec::new(),
            nbuckets: Vec::new(),
        }
    }

    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    pub fn header(&self) -> CounterResetHeader {
        CounterResetHeader::from_byte(self.w.bytes()[2])
    }

    pub fn can_append(&self, h: &FloatHistogram) -> bool {
        if self.num == 0 || is_stale_nan(h.sum) {
            return true;
        }
        if is_stale_nan(self.sum.value) {
            return false;
        }
        let gauge = self.header() == CounterResetHeader::Gauge;
        if gauge != (h.counter_reset_hint == CounterResetHint::Gauge) {
            return false;
        }
        if !self
            .layout
            .same_as(h.schema, h.zero_threshold, &h.positive_spans, &h.negative_spans)
        {
            return false;
        }
        gauge || !self.is_counter_reset(h)
    }

    pub fn is_counter_reset(&self, h: &FloatHistogram) -> bool {
        h.counter_reset_hint == CounterResetHint::CounterReset
            || h.count < self.cnt.value
            || h.zero_count < self.zcnt.value
            || h.schema != self.layout.schema
            || h.positive_spans != self.layout.positive_spans
            || h.negative_spans != self.layout.negative_spans
            || self.pbuckets.iter().zip(&h.positive_buckets).any(|(o, n)| *n < o.value)
            || self.nbuckets.iter().zip(&h.negative_buckets).any(|(o, n)| *n < o.value)
    }

    pub fn append(&mut self, t: i64, h: &FloatHistogram) {
        let empty = FloatHistogram {
            sum: h.sum,
            ..Default::default()
        };
        let h = if is_stale_nan(h.sum) { &empty } else { h };
        let mut t_delta = 0;
        if self.num == 0 {
            self.layout = Layout::of_float(h);
            write_layout(&mut self.w, &self.layout);
            self.pbuckets = h.positive_buckets.iter().map(|&v| XorValue::new(v, 0xff)).collect();
            self.nbuckets = h.negative_buckets.iter().map(|&v| XorValue::new(v, 0xff)).collect();
            put_varbit_int(&mut self.w, t);
            self.w.write_bits(h.count.to_bits(), 64);
            self.w.write_bits(h.zero_count.to_bits(), 64);
            self.w.write_bits(h.sum.to_bits(), 64);
            self.cnt.value = h.count;
            self.zcnt.value = h.zero_count;
            self.sum.value = h.sum;
            for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
                self.w.write_bits(b.to_bits(), 64);
            }
        } else {
            t_delta = t.wrapping_sub(self.t);
            put_varbit_int(&mut self.w, t_delta.wrapping_sub(self.t_delta));
            self.cnt.write(&mut self.w, h.count);
            self.zcnt.write(&mut self.w, h.zero_count);
            self.sum.write(&mut self.w, h.sum);
            for (x, &b) in self.pbuckets.iter_mut().zip(&h.positive_buckets) {
                x.write(&mut self.w, b);
            }
            for (x, &b) in self.nbuckets.iter_mut().zip(&h.negative_buckets) {
                x.write(&mut self.w, b);
            }
        }
        self.num = self.num.wrapping_add(1);
        set_count(&mut self.w, self.num);
        self.t = t;
        self.t_delta = t_delta;
    }
}

/// Decodes a float histogram chunk.
#[derive(Clone, Debug)]
pub struct FloatHistogramIterator<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    header: CounterResetHeader,
    layout: Layout,
    t: i64,
    t_delta: i64,
    cnt: XorValue,
    zcnt: XorValue,
    sum: XorValue,
    pbuckets: Vec<XorValue>,
    nbuckets: Vec<XorValue>,
}

impl<'a> FloatHistogramIterator<'a> {
    pub fn new(data: &'a [u8]) -> Result<Self, DecodeError> {
        let (total, header) = header_of(data, "float histogram")?;
        Ok(FloatHistogramIterator {
            r: BitReader::new(&data[3..], 3),
            total,
            read: 0,
            header,
            layout: Layout::default(),
            t: 0,
            t_delta: 0,
            cnt: XorValue::new(0.0, 0),
            zcnt: XorValue::new(0.0, 0),
            sum: XorValue::new(0.0, 0),
            pbuckets: Vec::new(),
            nbuckets: Vec::new(),
        })
    }

    pub fn num_samples(&self) -> usize {
        usize::from(self.total)
    }

    pub fn header(&self) -> CounterResetHeader {
        self.header
    }

    pub fn timestamp(&self) -> i64 {
        self.t
    }

    pub fn next_histogram(&mut self) -> Result<Option<(i64, FloatHistogram)>, DecodeError> {
        if self.read >= self.total {
            return Ok(None);
        }
        let r = &mut self.r;
        if self.read == 0 {
            self.layout = read_layout(r)?;
            self.t = read_varbit_int(r)?;
            self.cnt.value = f64::from_bits(r.read_bits(64)?);
            self.zcnt.value = f64::from_bits(r.read_bits(64)?);
            self.sum.value = f64::from_bits(r.read_bits(64)?);
            let np = count_spans(&self.layout.positive_spans);
            let nn = count_spans(&self.layout.negative_spans);
            self.pbuckets = Vec::with_capacity(np);
            for _ in 0..np {
                self.pbuckets.push(XorValue::new(f64::from_bits(r.read_bits(64)?), 0));
            }
            self.nbuckets = Vec::with_capacity(nn);
            for _ in 0..nn {
                self.nbuckets.push(XorValue::new(f64::from_bits(r.read_bits(64)?), 0));
            }
        } else {
            let t_dod = read_varbit_int(r)?;
            self.t_delta = self.t_delta.wrapping_add(t_dod);
            self.t = self.t.wrapping_add(self.t_delta);
            self.cnt.read(r)?;
            self.zcnt.read(r)?;
            self.sum.read(r)?;
            if !is_stale_nan(self.sum.value) {
                for b in self.pbuckets.iter_mut().chain(self.nbuckets.iter_mut()) {
                    b.read(r)?;
                }
            }
        }
        self.read += 1;
        if is_stale_nan(self.sum.value) {
            return Ok(Some((
                self.t,
                FloatHistogram {
                    sum: self.sum.value,
                    ..Default::default()
                },
            )));
        }
        Ok(Some((
            self.t,
            FloatHistogram {
                counter_reset_hint: self.header.hint_for(self.read),
                schema: self.layout.schema,
                zero_threshold: self.layout.zero_threshold,
                zero_count: self.zcnt.value,
                count: self.cnt.value,
                sum: self.sum.value,
                positive_spans: self.layout.positive_spans.clone(),
                negative_spans: self.layout.negative_spans.clone(),
                positive_buckets: self.pbuckets.iter().map(|x| x.value).collect(),
                negative_buckets: self.nbuckets.iter().map(|x| x.value).collect(),
                custom_values: Vec::new(),
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(i: u64) -> Histogram {
        Histogram {
            schema: 1,
            zero_threshold: 0.001,
            zero_count: i,
            count: 10 * i + 3,
            sum: 1.5 * i as f64,
            positive_spans: vec![Span::new(-2, 2), Span::new(3, 1)],
            negative_spans: vec![Span::new(1, 1)],
            positive_buckets: vec![i as i64, 2, -1],
            negative_buckets: vec![(2 * i) as i64],
            ..Default::default()
        }
    }

    #[test]
    fn integer_round_trip() {
        let mut a = HistogramAppender::new(CounterResetHeader::CounterReset);
        let hs: Vec<Histogram> = (0..50).map(hist).collect();
        for (i, h) in hs.iter().enumerate() {
            assert!(a.can_append(h));
            a.append(1000 + i as i64 * 15_000 + (i as i64 % 3), h);
        }
        let b = a.into_bytes();
        let mut it = HistogramIterator::new(&b).unwrap();
        let mut n = 0;
        while let Some((t, h)) = it.next_histogram().unwrap() {
            assert_eq!(t, 1000 + n as i64 * 15_000 + (n as i64 % 3));
            let mut want = hs[n].clone();
            want.counter_reset_hint = if n == 0 {
                CounterResetHint::CounterReset
            } else {
                CounterResetHint::NotCounterReset
            };
            assert_eq!(h, want);
            n += 1;
        }
        assert_eq!(n, 50);
    }

    #[test]
    fn float_round_trip_with_stale() {
        let mut a = FloatHistogramAppender::new(CounterResetHeader::Gauge);
        let mut hs: Vec<FloatHistogram> = (0..20).map(|i| hist(i).to_float()).collect();
        for h in &mut hs {
            h.counter_reset_hint = CounterResetHint::Gauge;
        }
        hs.push(FloatHistogram {
            sum: hypnos_model::stale_nan(),
            ..Default::default()
        });
        for (i, h) in hs.iter().enumerate() {
            a.append(i as i64 * 1000, h);
        }
        let b = a.into_bytes();
        let mut it = FloatHistogramIterator::new(&b).unwrap();
        let mut n = 0;
        while let Some((t, h)) = it.next_histogram().unwrap() {
            assert_eq!(t, n as i64 * 1000);
            if n == 20 {
                assert!(is_stale_nan(h.sum));
            } else {
                assert_eq!(h, hs[n]);
            }
            n += 1;
        }
        assert_eq!(n, 21);
    }

    #[test]
    fn zero_thresholds() {
        for zt in [
            0.0,
            0.5,
            1.0,
            2f64.powi(-242),
            2f64.powi(10),
            1e-128,
            0.3,
            2f64.powi(11),
        ] {
            let mut w = BitWriter::default();
            write_zero_threshold(&mut w, zt);
            let b = w.into_bytes();
            if zt == 2f64.powi(-128) || zt == 0.5 {
                assert_eq!(b.len(), 1);
            }
            assert_eq!(read_zero_threshold(&mut BitReader::new(&b, 0)).unwrap(), zt);
        }
    }
}
