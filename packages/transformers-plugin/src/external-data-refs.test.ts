/**
 * External-data references are checked wherever a model can hold a tensor — initializers, Constant
 * nodes (one tensor or a list), sparse initializers, subgraphs — and a location with a URL scheme
 * (`file://`, `http://`) is refused like an absolute path (issue 15).
 */
import { describe, expect, test } from 'vitest';
import { makeModel } from '@tensorpeft/model-gen';
import onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';
import { externalLocations } from './external-data.js';
import { decodeModel, rewriteModel } from './rewrite.js';

const { onnx } = onnxProto;

function externalTensor(name: string, location: string): onnxProto.onnx.ITensorProto {
  return onnx.TensorProto.create({
    name,
    dataType: onnx.TensorProto.DataType.FLOAT,
    dims: [2],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [onnx.StringStringEntryProto.create({ key: 'location', value: location }), onnx.StringStringEntryProto.create({ key: 'length', value: '8' })],
  });
}

function tinyModel() {
  const m = makeModel({ arch: 'bert', size: 'tiny' });
  return { model: decodeModel(m.files.get('onnx/model.onnx')!), targets: m.shape.modules.map((x) => x.path) };
}

describe('external data references outside the initializer list', () => {
  test.each(['../../etc/passwd', '/etc/passwd', 'file:///etc/passwd', 'http://127.0.0.1:9/x.onnx_data'])('a Constant node tensor at %s is a PluginError before the rewrite', (location) => {
    const { model, targets } = tinyModel();
    model.graph!.node!.push(
      onnx.NodeProto.create({ opType: 'Constant', name: 'evil_const', output: ['evil_out'], attribute: [onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: externalTensor('evil', location) })] }),
    );
    expect(() => rewriteModel(model, { targets })).toThrow(PluginError);
  });

  test('a tensor inside a subgraph (If branch) is checked too', () => {
    const { model, targets } = tinyModel();
    const branch = onnx.GraphProto.create({ name: 'then', node: [onnx.NodeProto.create({ opType: 'Constant', output: ['c'], attribute: [onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: externalTensor('deep', '../x') })] })] });
    model.graph!.node!.push(onnx.NodeProto.create({ opType: 'If', input: ['cond'], output: ['y'], attribute: [onnx.AttributeProto.create({ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch })] }));
    expect(() => rewriteModel(model, { targets })).toThrow(/\.\./);
  });

  test('URL-scheme locations on initializers are refused; plain relative names are kept', () => {
    expect(() => externalLocations([externalTensor('w', 'file:///etc/passwd')])).toThrow(PluginError);
    expect(() => externalLocations([externalTensor('w', 'https://example.org/model.onnx_data')])).toThrow(PluginError);
    expect(externalLocations([externalTensor('w', 'model.onnx_data'), externalTensor('v', 'sub/part.onnx_data')])).toEqual(['model.onnx_data', 'sub/part.onnx_data']);
  });

  test('a whole graph is accepted as the source: initializers and Constant tensors, first-use order', () => {
    const g = onnx.GraphProto.create({
      initializer: [externalTensor('w', 'a.onnx_data')],
      node: [onnx.NodeProto.create({ opType: 'Constant', output: ['c'], attribute: [onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: externalTensor('c', 'b.onnx_data') })] })],
    });
    expect(externalLocations(g)).toEqual(['a.onnx_data', 'b.onnx_data']);
  });
});
