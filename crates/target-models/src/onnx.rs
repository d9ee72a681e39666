//! ONNX export: the subset of `onnx.proto` a generated target needs (tensors, nodes, one
//! graph, opset 13), as `prost` messages with the official field numbers, and a small
//! graph builder. Each model adds its own nodes (`Mlp::onnx_nodes`); the caller adds the
//! input preprocessing and the output head, and checks the file in onnxruntime.

use anyhow::{ensure, Result};
use candle_core::Tensor;
use prost::Message;

/// `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;
/// `AttributeProto.AttributeType`: `FLOAT`, `INT`, `INTS`.
const ATTR_FLOAT: i32 = 1;
const ATTR_INT: i32 = 2;
const ATTR_INTS: i32 = 7;
/// IR version 7 (ONNX 1.8) with opset 13: read by every onnxruntime since 1.6.
const IR_VERSION: i64 = 7;
const OPSET: i64 = 13;

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(string, tag = "2")]
    producer_name: String,
    #[prost(string, tag = "3")]
    producer_version: String,
    #[prost(string, tag = "6")]
    doc_string: String,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<OperatorSetIdProto>,
}

#[derive(Clone, PartialEq, Message)]
struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(int64, tag = "2")]
    version: i64,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(float, tag = "2")]
    f: f32,
    #[prost(int64, tag = "3")]
    i: i64,
    #[prost(int64, repeated, tag = "8")]
    ints: Vec<i64>,
    #[prost(int32, tag = "20")]
    r#type: i32,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorTypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorTypeProto {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, Message)]
struct Dimension {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

/// A node attribute.
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
}

/// One dimension of a graph input or output: fixed, or named (the batch).
pub enum Dim {
    Fixed(usize),
    Named(&'static str),
}

/// Builds one float graph: initializers, nodes in execution order, named inputs/outputs.
#[derive(Default)]
pub struct OnnxGraph {
    graph: GraphProto,
}

fn value_info(name: &str, dims: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| match d {
                            Dim::Fixed(n) => Dimension {
                                dim_value: Some(*n as i64),
                                dim_param: None,
                            },
                            Dim::Named(p) => Dimension {
                                dim_value: None,
                                dim_param: Some((*p).into()),
                            },
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

impl OnnxGraph {
    pub fn new(name: &str) -> Self {
        Self {
            graph: GraphProto {
                name: name.into(),
                ..Default::default()
            },
        }
    }

    /// A float input of the graph.
    pub fn input(&mut self, name: &str, dims: &[Dim]) {
        self.graph.input.push(value_info(name, dims));
    }

    /// A float output of the graph (a value some node produces).
    pub fn output(&mut self, name: &str, dims: &[Dim]) {
        self.graph.output.push(value_info(name, dims));
    }

    /// A constant float tensor (little-endian raw data).
    pub fn constant(&mut self, name: &str, dims: &[usize], values: &[f32]) -> Result<String> {
        ensure!(
            dims.iter().product::<usize>() == values.len(),
            "ONNX initializer `{name}`: {} values for shape {dims:?}",
            values.len()
        );
        self.graph.initializer.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        Ok(name.into())
    }

    /// A weight tensor, shape and values as they are.
    pub fn tensor(&mut self, name: &str, t: &Tensor) -> Result<String> {
        let v = t
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        self.constant(name, t.dims(), &v)
    }

    /// Appends a node; its one output is named `out` and returned.
    pub fn node(&mut self, op: &str, inputs: &[&str], out: &str, attrs: &[(&str, Attr)]) -> String {
        let n = self.graph.node.len();
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            name: format!("{op}_{n}"),
            op_type: op.into(),
            attribute: attrs
                .iter()
                .map(|(name, a)| {
                    let mut p = AttributeProto {
                        name: (*name).into(),
                        ..Default::default()
                    };
                    match a {
                        Attr::Int(i) => (p.i, p.r#type) = (*i, ATTR_INT),
                        Attr::Float(f) => (p.f, p.r#type) = (*f, ATTR_FLOAT),
                        Attr::Ints(v) => (p.ints, p.r#type) = (v.clone(), ATTR_INTS),
                    }
                    p
                })
                .collect(),
        });
        out.into()
    }

    /// The serialized model (`.onnx` bytes), `doc` as its documentation string.
    pub fn finish(self, doc: &str) -> Vec<u8> {
        ModelProto {
            ir_version: IR_VERSION,
            producer_name: "hyper-infer".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(self.graph),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
        }
        .encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes decode back to the same messages with the official field numbers: the
    /// graph's name sits in field 2 of field 7, the opset in field 8.
    #[test]
    fn a_graph_round_trips_through_its_wire_format() {
        let mut g = OnnxGraph::new("g");
        g.input("x", &[Dim::Named("batch"), Dim::Fixed(2)]);
        let w = g.constant("w", &[2], &[1.0, -2.0]).unwrap();
        let y = g.node("Mul", &["x", &w], "y", &[]);
        g.output(&y, &[Dim::Named("batch"), Dim::Fixed(2)]);
        let bytes = g.finish("doc");
        let m = ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = m.graph.unwrap();
        assert_eq!(graph.name, "g");
        assert_eq!(graph.node[0].op_type, "Mul");
        assert_eq!(
            graph.initializer[0].raw_data,
            [1f32.to_le_bytes(), (-2f32).to_le_bytes()].concat()
        );
        assert_eq!(m.opset_import[0].version, 13);
        // ModelProto field 1 (ir_version, varint): tag byte 0x08 first.
        assert_eq!(&bytes[..2], &[0x08, 7]);
        assert!(OnnxGraph::new("g").constant("bad", &[3], &[1.0]).is_err());
    }
}
