//! Building an ONNX graph: nodes, constant initialisers and typed inputs and outputs, each
//! value named once.

use super::proto::{
    AttributeProto, GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
};

/// An attribute value.
pub(super) enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    String(String),
    Strings(Vec<String>),
}

/// A graph under construction.
#[derive(Default)]
pub(super) struct Graph {
    pub proto: GraphProto,
    next: usize,
}

/// A value's type: element type and dims, `None` for the batch dimension.
pub(super) fn value_info(name: &str, element: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = |d: &Option<i64>| tensor_shape_proto::Dimension {
        denotation: None,
        value: Some(match d {
            Some(n) => tensor_shape_proto::dimension::Value::DimValue(*n),
            None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
        }),
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(element as i32),
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(dim).collect(),
                }),
            })),
        }),
        ..Default::default()
    }
}

impl Graph {
    /// A fresh value name with `hint` in it.
    pub fn name(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// A float constant of shape `dims`.
    pub fn floats(&mut self, hint: &str, dims: &[i64], values: &[f32]) -> String {
        let name = self.name(hint);
        self.proto.initializer.push(TensorProto {
            name: Some(name.clone()),
            dims: dims.to_vec(),
            data_type: Some(DataType::Float as i32),
            float_data: values.to_vec(),
            ..Default::default()
        });
        name
    }

    /// An int64 constant of shape `dims`.
    pub fn ints(&mut self, hint: &str, dims: &[i64], values: &[i64]) -> String {
        let name = self.name(hint);
        self.proto.initializer.push(TensorProto {
            name: Some(name.clone()),
            dims: dims.to_vec(),
            data_type: Some(DataType::Int64 as i32),
            int64_data: values.to_vec(),
            ..Default::default()
        });
        name
    }

    /// A node `op` (in `domain`, "" for ONNX's own) of `inputs`, giving one new value.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let output = self.name(&op.to_lowercase());
        self.op_into(op, "", inputs, attrs, &output);
        output
    }

    /// A node of the ONNX-ML domain, giving one new value.
    pub fn ml(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let output = self.name(&op.to_lowercase());
        self.op_into(op, "ai.onnx.ml", inputs, attrs, &output);
        output
    }

    /// A node writing `output` (a graph output's name).
    pub fn op_into(&mut self, op: &str, domain: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>, output: &str) {
        let attribute = attrs
            .into_iter()
            .map(|(name, value)| {
                let mut a = AttributeProto {
                    name: Some(name.into()),
                    ..Default::default()
                };
                let kind = match value {
                    Attr::Int(i) => {
                        a.i = Some(i);
                        AttributeType::Int
                    }
                    Attr::Ints(v) => {
                        a.ints = v;
                        AttributeType::Ints
                    }
                    Attr::String(s) => {
                        a.s = Some(s.into_bytes());
                        AttributeType::String
                    }
                    Attr::Strings(v) => {
                        a.strings = v.into_iter().map(String::into_bytes).collect();
                        AttributeType::Strings
                    }
                };
                a.r#type = Some(kind as i32);
                a
            })
            .collect();
        let name = self.name(&format!("node_{}", op.to_lowercase()));
        self.proto.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(name),
            op_type: Some(op.into()),
            domain: (!domain.is_empty()).then(|| domain.to_string()),
            attribute,
            ..Default::default()
        });
    }
}
